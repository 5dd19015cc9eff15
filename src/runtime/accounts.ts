import fs from 'node:fs';
import type { Logger } from 'pino';
import { createImapAuthenticator, type ImapAuthenticator, type ImapSecurity } from '../auth/imap-login.js';
import { generatePassword, hashPassword } from '../auth/password.js';
import { createSignIn, type SignIn } from '../auth/signin.js';
import { createLoginThrottle } from '../auth/throttle.js';
import type { Config } from '../config/settings.js';
import type { Db } from '../db/database.js';
import { createSessionStore, type SessionStore } from '../db/sessions.js';
import { createUserStore, type UserStore } from '../db/users.js';

export interface Accounts {
  users: UserStore;
  sessions: SessionStore;
  signIn: SignIn;
  /** Set when this start created the first admin account; its password is printed once, never logged. */
  firstAdmin: { name: string; password: string | null } | null;
  close(): void;
}

/** IMAP sign-in from the settings, or null when SPINDLE_IMAP_HOST is empty. */
export function imapFromConfig(config: Config): ImapAuthenticator | null {
  if (!config.imapHost) return null;
  return createImapAuthenticator({
    host: config.imapHost, port: config.imapPort, security: config.imapSecurity as ImapSecurity,
    rejectUnauthorized: config.imapTlsVerify, allowedDomains: config.imapDomains,
    ...(config.imapCa ? { ca: fs.readFileSync(config.imapCa) } : {}),
  });
}

/**
 * Accounts, sessions and sign-in for `serve`. On the first start with no admin account, creates
 * `admin` with SPINDLE_ADMIN_PASSWORD or a random password that the caller prints once.
 */
export async function openAccounts(config: Config, db: Db, log: Logger): Promise<Accounts> {
  const users = createUserStore(db);
  const sessions = createSessionStore(db, { idleMs: config.sessionIdleMinutes * 60_000, absoluteMs: config.sessionMaxHours * 3_600_000 });
  let firstAdmin: Accounts['firstAdmin'] = null;
  if (!users.hasAdmin()) {
    const password = config.adminPassword || generatePassword();
    const name = users.get('admin') ? `admin-${Date.now().toString(36)}` : 'admin';
    users.create({ name, source: 'local', roles: ['admin'], passwordHash: await hashPassword(password) });
    firstAdmin = { name, password: config.adminPassword ? null : password };
    log.warn({ event: 'accounts.first_admin', name, password_from: config.adminPassword ? 'SPINDLE_ADMIN_PASSWORD' : 'generated, printed once on the terminal' }, 'no admin account existed: created one');
  }
  const signIn = createSignIn({ users, throttle: createLoginThrottle(), imap: imapFromConfig(config) });
  // Ended sessions are refused when used; this only keeps the table small.
  const sweeper = setInterval(() => {
    try {
      sessions.sweep();
    } catch (err) {
      log.warn({ event: 'sessions.sweep_failed', err }, 'could not remove ended sessions');
    }
  }, 10 * 60_000);
  sweeper.unref();
  return { users, sessions, signIn, firstAdmin, close: () => clearInterval(sweeper) };
}
