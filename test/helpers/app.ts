import type { SignIn } from '../../src/auth/signin.js';
import { createSignIn } from '../../src/auth/signin.js';
import { createLoginThrottle, type LoginThrottle } from '../../src/auth/throttle.js';
import type { ImapAuthenticator } from '../../src/auth/imap-login.js';
import type { Db } from '../../src/db/database.js';
import { createSessionStore, type SessionStore } from '../../src/db/sessions.js';
import { createUserStore, type UserStore } from '../../src/db/users.js';

/** The account parts of AppDeps for an app built in a test. */
export function accountDeps(db: Db, opts: { imap?: ImapAuthenticator | null; throttle?: LoginThrottle; now?: () => number } = {}): {
  users: UserStore; sessions: SessionStore; signIn: SignIn;
} {
  const users = createUserStore(db);
  const sessions = createSessionStore(db, { idleMs: 30 * 60_000, absoluteMs: 12 * 3_600_000 }, opts.now);
  const signIn = createSignIn({ users, throttle: opts.throttle ?? createLoginThrottle(opts.now ? { now: opts.now } : {}), imap: opts.imap ?? null, ...(opts.now ? { now: opts.now } : {}) });
  return { users, sessions, signIn };
}
