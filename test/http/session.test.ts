import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openAuditTrail, type AuditTrail } from '../../src/audit/trail.js';
import { createImapAuthenticator } from '../../src/auth/imap-login.js';
import { hashPassword } from '../../src/auth/password.js';
import { generateSecret, totpCode } from '../../src/auth/totp.js';
import { createArchiveReader } from '../../src/db/archive-reader.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createTokenStore } from '../../src/db/tokens.js';
import type { UserStore } from '../../src/db/users.js';
import { buildApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createSearcher } from '../../src/search/search.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { accountDeps } from '../helpers/app.js';
import { dovecotAvailable, dovecotUnavailableReason, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

interface Harness { app: FastifyInstance; db: Db; audit: AuditTrail; users: UserStore; clock: { t: number }; logs: string[] }
const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function harness(opts: { imap?: ReturnType<typeof createImapAuthenticator>; trustProxy?: string[] } = {}): Promise<Harness> {
  const dir = tempDir();
  const db = openDatabase({ file: path.join(dir, 'spindle.db') });
  const clock = { t: Date.UTC(2026, 0, 5, 9, 0, 0) };
  const now = () => clock.t;
  const logs: string[] = [];
  const log = pino({ level: 'trace' }, new Writable({ write(chunk: Buffer, _e, cb) { logs.push(chunk.toString()); cb(); } }));
  const audit = await openAuditTrail({ dir: path.join(dir, 'audit'), db, log: silentLog() });
  const accounts = accountDeps(db, { now, imap: opts.imap ?? null });
  const app = await buildApp({
    reader: createArchiveReader(db), searcher: createSearcher(db), store: createFsBlobStore({ dir: path.join(dir, 'blobs') }),
    tokens: createTokenStore(db), audit, ...accounts, metrics: createMetrics(), indexLag: () => ({ records: 0, seconds: 0 }), version: 't',
  }, { log, ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}) });
  open.push(async () => {
    await app.close();
    await audit.close();
    db.close();
  });
  return { app, db, audit, users: accounts.users, clock, logs };
}

const PASSWORD = 'correct horse battery staple';
async function addUser(h: Harness, name: string, roles: string[], extra: { totp?: string } = {}) {
  const u = h.users.create({ name, source: 'local', roles, passwordHash: await hashPassword(PASSWORD) });
  if (extra.totp) h.users.setTotp(u.id, extra.totp);
  return u;
}
const signIn = (h: Harness, body: Record<string, string>, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/api/session', payload: body, headers });
const cookieOf = (res: { headers: Record<string, unknown> }): string => String(res.headers['set-cookie']).split(';')[0]!;

describe('sign-in with a local account', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie, says who you are, and is on the audit trail', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor', 'admin']);
    const res = await signIn(h, { username: 'Olivia', password: PASSWORD });
    expect(res.statusCode).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^spindle_session=[\w-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/); // plain http on loopback
    const body = res.json() as { name: string; roles: string[]; csrf: string };
    expect(body).toMatchObject({ name: 'olivia', roles: ['admin', 'auditor'] });
    const me = await h.app.inject({ url: '/api/session', headers: { cookie: cookieOf(res) } });
    expect(me.json()).toMatchObject({ name: 'olivia', via: 'session', csrf: body.csrf });
    expect((await h.app.inject({ url: '/api/search?q=x', headers: { cookie: cookieOf(res) } })).statusCode).toBe(200);
    const page = await h.audit.query({ action: 'session.signin' });
    expect(page.items[0]).toMatchObject({ actor: 'olivia', role: 'auditor', outcome: 'ok', source: '127.0.0.1' });
  });

  it('answers an unknown name exactly like a wrong password, and records both failures', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor']);
    const wrong = await signIn(h, { username: 'olivia', password: 'nope' });
    const unknown = await signIn(h, { username: 'nobody', password: 'nope' });
    expect([wrong.statusCode, unknown.statusCode]).toEqual([401, 401]);
    expect(wrong.body).toBe(unknown.body);
    const failed = (await h.audit.query({ action: 'session.signin_failed' })).items;
    expect(failed.map((e) => [e.actor, e.details.reason]).sort()).toEqual([['nobody', 'unknown_user'], ['olivia', 'wrong_password']]);
  });

  it('a cookie-authenticated request that changes state needs the CSRF token; sign-out ends the session', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor']);
    const res = await signIn(h, { username: 'olivia', password: PASSWORD });
    const cookie = cookieOf(res);
    const { csrf } = res.json() as { csrf: string };
    const noToken = await h.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie } });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json()).toMatchObject({ error: { code: 'csrf' } });
    expect((await h.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie, 'x-csrf-token': 'x'.repeat(csrf.length) } })).statusCode).toBe(403);
    const out = await h.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie, 'x-csrf-token': csrf } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/spindle_session=;/);
    expect((await h.app.inject({ url: '/api/session', headers: { cookie } })).statusCode).toBe(401);
    expect((await h.audit.query({ action: 'session.signout' })).items).toHaveLength(1);
  });

  it('ends a session after the idle time and after the absolute lifetime', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor']);
    const cookie = cookieOf(await signIn(h, { username: 'olivia', password: PASSWORD }));
    h.clock.t += 29 * 60_000;
    expect((await h.app.inject({ url: '/api/session', headers: { cookie } })).statusCode).toBe(200);
    h.clock.t += 31 * 60_000;
    expect((await h.app.inject({ url: '/api/session', headers: { cookie } })).statusCode).toBe(401);
    // Active all along, but past 12 hours.
    const c2 = cookieOf(await signIn(h, { username: 'olivia', password: PASSWORD }));
    for (let i = 0; i < 25; i++) {
      h.clock.t += 29 * 60_000;
      const s = (await h.app.inject({ url: '/api/session', headers: { cookie: c2 } })).statusCode;
      if (i < 24) expect(s, `after ${(i + 1) * 29} minutes`).toBe(200);
      else expect(s).toBe(401);
    }
  });

  it('marks the cookie Secure when a trusted TLS proxy forwarded the request, not when anyone claims it', async () => {
    const proxied = await harness({ trustProxy: ['127.0.0.1'] });
    await addUser(proxied, 'olivia', ['auditor']);
    const viaProxy = await signIn(proxied, { username: 'olivia', password: PASSWORD }, { 'x-forwarded-proto': 'https' });
    expect(String(viaProxy.headers['set-cookie'])).toMatch(/Secure/);
    const direct = await harness();
    await addUser(direct, 'olivia', ['auditor']);
    const claimed = await signIn(direct, { username: 'olivia', password: PASSWORD }, { 'x-forwarded-proto': 'https' });
    expect(String(claimed.headers['set-cookie'])).not.toMatch(/Secure/);
  });
});

describe('brute force', () => {
  it('slows down, then locks the account for everyone (right password too), then lets it in again', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor']);
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      codes.push((await signIn(h, { username: 'olivia', password: `guess-${i}` })).statusCode);
      h.clock.t += 60_000; // past any slow-down delay, inside the 15-minute window
    }
    expect(codes.slice(0, 10).every((c) => c === 401)).toBe(true);
    expect(codes.slice(10)).toEqual([429, 429]);
    const locked = await signIn(h, { username: 'olivia', password: PASSWORD });
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({ error: { code: 'locked' } });
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    h.clock.t += 16 * 60_000;
    expect((await signIn(h, { username: 'olivia', password: PASSWORD })).statusCode).toBe(200);
  });

  it('treats an unknown name the same way (no enumeration through the lockout)', async () => {
    const h = await harness();
    const codes: number[] = [];
    for (let i = 0; i < 11; i++) {
      codes.push((await signIn(h, { username: 'ghost', password: `guess-${i}` })).statusCode);
      h.clock.t += 60_000;
    }
    expect(codes.at(-1)).toBe(429);
  });
});

describe('TOTP second factor', () => {
  it('asks for the code after a right password, refuses a wrong or replayed one', async () => {
    const h = await harness();
    const secret = generateSecret();
    await addUser(h, 'olivia', ['auditor'], { totp: secret });
    const noCode = await signIn(h, { username: 'olivia', password: PASSWORD });
    expect(noCode.statusCode).toBe(401);
    expect(noCode.json()).toMatchObject({ error: { code: 'totp_required' } });
    expect((await signIn(h, { username: 'olivia', password: 'wrong', totp: totpCode(secret, h.clock.t) })).statusCode).toBe(401);
    const code = totpCode(secret, h.clock.t);
    const wrongCode = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect((await signIn(h, { username: 'olivia', password: PASSWORD, totp: wrongCode })).json()).toMatchObject({ error: { code: 'bad_credentials' } });
    expect((await signIn(h, { username: 'olivia', password: PASSWORD, totp: code })).statusCode).toBe(200);
    expect((await signIn(h, { username: 'olivia', password: PASSWORD, totp: code })).statusCode).toBe(401);
    h.clock.t += 30_000;
    expect((await signIn(h, { username: 'olivia', password: PASSWORD, totp: totpCode(secret, h.clock.t) })).statusCode).toBe(200);
  });
});

describe('secrets never reach the log', () => {
  it('a sign-in flow logs no password, session cookie, CSRF token or bearer token', async () => {
    const h = await harness();
    await addUser(h, 'olivia', ['auditor']);
    await signIn(h, { username: 'olivia', password: 'wrong-password-Zq9' });
    const res = await signIn(h, { username: 'olivia', password: PASSWORD });
    const cookie = cookieOf(res);
    const { csrf } = res.json() as { csrf: string };
    await h.app.inject({ url: '/api/nope', headers: { cookie } });
    await h.app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie, 'x-csrf-token': csrf } });
    const { token } = createTokenStore(h.db).create({ role: 'auditor', name: 't' });
    await h.app.inject({ url: '/api/search?q=%22broken', headers: { authorization: `Bearer ${token}` } });
    const all = h.logs.join('');
    for (const secret of ['wrong-password-Zq9', PASSWORD, cookie.split('=')[1]!, csrf, token]) expect(all).not.toContain(secret);
  });
});

describe.skipIf(!dovecotAvailable())('sign-in with the mail password (IMAP, real Dovecot)', () => {
  let dovecot: DovecotInstance;
  beforeAll(async () => {
    dovecot = await startDovecot({ users: { 'alice@example.com': 'alice-mail-pw' } });
  }, 60_000);
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('creates the account with role user and its address on first success; refuses a wrong password', async () => {
    const imap = createImapAuthenticator({ host: dovecot.host, port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca, allowedDomains: ['example.com'] });
    const h = await harness({ imap });
    const bad = await signIn(h, { username: 'alice@example.com', password: 'nope' });
    expect(bad.statusCode).toBe(401);
    expect(h.users.get('alice@example.com')).toBeNull();
    const ok = await signIn(h, { username: 'Alice@Example.com', password: 'alice-mail-pw' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: 'alice@example.com', roles: ['user'], addresses: ['alice@example.com'] });
    expect(h.users.get('alice@example.com')).toMatchObject({ source: 'imap', roles: ['user'] });
    // The next sign-in checks the mail server again, and an admin could not set a password here.
    expect((await signIn(h, { username: 'alice@example.com', password: 'alice-mail-pw' })).statusCode).toBe(200);
    expect((await signIn(h, { username: 'mallory@elsewhere.test', password: 'x' })).statusCode).toBe(401);
    const entries = (await h.audit.query({ action: 'session.signin' })).items;
    expect(entries[0]!.details).toMatchObject({ method: 'imap' });
  }, 30_000);
});
if (!dovecotAvailable()) console.warn(`[skip] IMAP sign-in tests: ${dovecotUnavailableReason()}`);
