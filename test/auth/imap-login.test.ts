import { chmodSync, readdirSync, statSync, utimesSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ImapFlow } from 'imapflow';
import {
  classifyImapError,
  createImapAuthenticator,
  ImapLoginConfigError,
  type ImapAuthenticatorOptions,
  type ImapLoginResult,
} from '../../src/auth/imap-login.js';
import { dovecotAvailable, dovecotUnavailableReason, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';

const available = dovecotAvailable();
if (!available) console.warn(`[skip] ${dovecotUnavailableReason()} — IMAP sign-in tests against a real Dovecot skipped`);

const ALICE = 'alice@example.test';
// Distinctive, so a leak into any detail string cannot be a coincidence.
const ALICE_PW = 'Pw-7fQz!correct-horse';
const BOB = 'bob@other.test';
const BOB_PW = 'Pw-bob-hashed-9x';
const WRONG_PW = 'Pw-wrong-Zk41m';

/** Every detail string seen by any test, checked for passwords at the end. */
const details: string[] = [];
function record(r: ImapLoginResult): ImapLoginResult {
  if (!r.ok) details.push(r.detail);
  return r;
}

interface FakeServer {
  port: number;
  /** Sockets the server has seen closed (by the client). */
  closed: number;
  connections: number;
  close(): Promise<void>;
}

/**
 * A loopback TCP server scripted by `onConnect` (greet or stay silent) and `onLine` (answer
 * commands): enough IMAP to provoke what a healthy Dovecot never says.
 */
async function fakeServer(onConnect: (s: net.Socket) => void, onLine?: (s: net.Socket, tag: string, line: string) => void): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const state = { closed: 0, connections: 0 };
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => {
      state.closed++;
      sockets.delete(s);
    });
    s.on('error', () => undefined);
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const tag = line.split(' ')[0] ?? '*';
        if (/^\S+ LOGOUT/i.test(line)) s.end(`* BYE bye\r\n${tag} OK done\r\n`);
        else onLine?.(s, tag, line);
      }
    });
    onConnect(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get closed() {
      return state.closed;
    },
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('createImapAuthenticator without a server', () => {
  let fake: FakeServer | null = null;
  afterEach(async () => {
    await fake?.close();
    fake = null;
  });

  it('refuses cleartext to a non-loopback host, and other bad settings, at construction', () => {
    expect(() => createImapAuthenticator({ host: 'mail.example.test', port: 143, security: 'none' })).toThrow(ImapLoginConfigError);
    expect(() => createImapAuthenticator({ host: '10.0.0.1', port: 143, security: 'none' })).toThrow(/loopback/);
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) {
      expect(() => createImapAuthenticator({ host, port: 143, security: 'none' })).not.toThrow();
    }
    expect(() => createImapAuthenticator({ host: 'h', port: 0, security: 'tls' })).toThrow(ImapLoginConfigError);
    expect(() => createImapAuthenticator({ host: 'h', port: 993, security: 'tls', timeoutMs: 0 })).toThrow(ImapLoginConfigError);
    expect(() => createImapAuthenticator({ host: 'h', port: 993, security: 'tls', allowedDomains: ['a@b'] })).toThrow(ImapLoginConfigError);
  });

  it('rejects malformed input and disallowed domains before any network traffic', async () => {
    fake = await fakeServer((s) => s.write('* OK ready\r\n'));
    const auth = createImapAuthenticator({ host: '127.0.0.1', port: fake.port, security: 'none', allowedDomains: ['Example.TEST'] });
    const cases: Array<[string, string, string]> = [
      ['', 'x', 'bad_credentials'],
      [ALICE, '', 'bad_credentials'],
      ['alice', 'x', 'bad_credentials'], // not a full address
      ['@example.test', 'x', 'bad_credentials'],
      ['alice@', 'x', 'bad_credentials'],
      ['a@b@example.test', 'x', 'bad_credentials'],
      ['ali\r\nce@example.test', 'x', 'bad_credentials'],
      ['alice@example.test\0', 'x', 'bad_credentials'],
      [ALICE, 'pass\r\nA1 LOGOUT', 'bad_credentials'],
      [ALICE, 'pa\0ss', 'bad_credentials'],
      [`${'a'.repeat(310)}@example.test`, 'x', 'bad_credentials'],
      [ALICE, 'p'.repeat(1025), 'bad_credentials'],
      ['alice@evil.test', ALICE_PW, 'domain_not_allowed'],
      ['alice@sub.example.test', ALICE_PW, 'domain_not_allowed'],
    ];
    for (const [user, pw, reason] of cases) {
      const r = record(await auth.authenticate(user, pw));
      expect(r, `${JSON.stringify(user)}`).toMatchObject({ ok: false, reason });
    }
    expect(fake.connections).toBe(0);
  });

  it('reports a closed port as unavailable', async () => {
    const port = await closedPort();
    const r = record(await createImapAuthenticator({ host: '127.0.0.1', port, security: 'tls' }).authenticate(ALICE, ALICE_PW));
    expect(r).toMatchObject({ ok: false, reason: 'unavailable' });
    if (!r.ok) expect(r.detail).toMatch(/ECONNREFUSED/);
  });

  it('times out on a server that accepts but never greets, within the budget, and closes the socket', async () => {
    fake = await fakeServer(() => undefined);
    const auth = createImapAuthenticator({ host: '127.0.0.1', port: fake.port, security: 'none', timeoutMs: 400 });
    const t0 = Date.now();
    const r = record(await auth.authenticate(ALICE, ALICE_PW));
    const elapsed = Date.now() - t0;
    expect(r).toMatchObject({ ok: false, reason: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeLessThan(2_000);
    await expect.poll(() => fake?.closed, { timeout: 2_000 }).toBe(1);
  });

  it('also times out over implicit TLS when the server never starts the handshake', async () => {
    fake = await fakeServer(() => undefined);
    const auth = createImapAuthenticator({ host: '127.0.0.1', port: fake.port, security: 'tls', timeoutMs: 400 });
    const r = record(await auth.authenticate(ALICE, ALICE_PW));
    expect(r).toMatchObject({ ok: false, reason: 'timeout' });
    await expect.poll(() => fake?.closed, { timeout: 2_000 }).toBe(1);
  });

  it('treats NO [UNAVAILABLE] (auth backend down) as unavailable, and scrubs an echoed password', async () => {
    fake = await fakeServer(
      (s) => s.write('* OK [CAPABILITY IMAP4rev1] fake ready\r\n'),
      (s, tag, line) => {
        if (/^\S+ CAPABILITY/i.test(line)) s.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
        // A careless server repeating the command text back: the password must still not surface.
        else if (/^\S+ LOGIN/i.test(line)) s.write(`${tag} NO [UNAVAILABLE] Temporary failure for ${line}\r\n`);
        else s.write(`${tag} BAD unknown\r\n`);
      },
    );
    const auth = createImapAuthenticator({ host: '127.0.0.1', port: fake.port, security: 'none', timeoutMs: 3_000 });
    const r = record(await auth.authenticate(ALICE, ALICE_PW));
    expect(r).toMatchObject({ ok: false, reason: 'unavailable' });
    if (!r.ok) {
      expect(r.detail).toMatch(/UNAVAILABLE/);
      expect(r.detail).toContain('[redacted]');
    }
  });

  it('does not accept a PREAUTH greeting as a sign-in', async () => {
    fake = await fakeServer(
      (s) => s.write('* PREAUTH [CAPABILITY IMAP4rev1] welcome, whoever you are\r\n'),
      (s, tag, line) => {
        if (/^\S+ CAPABILITY/i.test(line)) s.write(`* CAPABILITY IMAP4rev1\r\n${tag} OK done\r\n`);
        else if (/^\S+ NAMESPACE/i.test(line)) s.write(`* NAMESPACE (("" "/")) NIL NIL\r\n${tag} OK done\r\n`);
        else s.write(`${tag} OK done\r\n`);
      },
    );
    const auth = createImapAuthenticator({ host: '127.0.0.1', port: fake.port, security: 'none', timeoutMs: 3_000 });
    const r = record(await auth.authenticate(ALICE, WRONG_PW));
    expect(r).toMatchObject({ ok: false, reason: 'unavailable' });
  });

  it('classifies server answers and socket errors', () => {
    const no = (code: string) => ({ responseStatus: 'NO', authenticationFailed: true, serverResponseCode: code, response: 'x' });
    expect(classifyImapError(no('AUTHENTICATIONFAILED')).reason).toBe('bad_credentials');
    expect(classifyImapError(no('')).reason).toBe('bad_credentials');
    expect(classifyImapError(no('UNAVAILABLE')).reason).toBe('unavailable');
    expect(classifyImapError(no('PRIVACYREQUIRED')).reason).toBe('tls_error');
    expect(classifyImapError({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' }).reason).toBe('tls_error');
    expect(classifyImapError({ code: 'CERT_HAS_EXPIRED' }).reason).toBe('tls_error');
    expect(classifyImapError({ code: 'EPROTO' }).reason).toBe('tls_error');
    expect(classifyImapError({ message: 'Server does not support STARTTLS', tlsFailed: true }).reason).toBe('tls_error');
    expect(classifyImapError({ code: 'GREETING_TIMEOUT' }).reason).toBe('timeout');
    expect(classifyImapError({ code: 'ENOTFOUND' }).reason).toBe('unavailable');
    expect(classifyImapError({ code: 'ClosedAfterConnectTLS', reason: 'Too many connections' }).reason).toBe('unavailable');
  });
});

describe.skipIf(!available)('IMAP sign-in against a real Dovecot', () => {
  let dovecot: DovecotInstance;
  const base = (): Pick<ImapAuthenticatorOptions, 'host' | 'timeoutMs'> => ({ host: dovecot.host, timeoutMs: 8_000 });

  beforeAll(async () => {
    dovecot = await startDovecot({
      users: { [ALICE]: ALICE_PW, [BOB]: BOB_PW },
      trustedNetworks: ['127.0.0.0/8'],
    });
  });
  afterAll(async () => {
    await dovecot?.stop();
  });
  const dumpLogOnFailure = () =>
    onTestFailed(async () => {
      console.error(`--- dovecot.log ---\n${await dovecot.log()}`);
    });

  it('signs in over implicit TLS with the harness certificate as ca; the address comes back lower-case', async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca });
    expect(await auth.authenticate(ALICE, ALICE_PW)).toEqual({ ok: true, address: ALICE });
    expect(await auth.authenticate('Alice@Example.TEST', ALICE_PW)).toEqual({ ok: true, address: ALICE });
  });

  it('signs in over STARTTLS (certificate verified, servername localhost)', async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapPort, security: 'starttls', ca: dovecot.ca, servername: 'localhost' });
    expect(await auth.authenticate(ALICE, ALICE_PW)).toEqual({ ok: true, address: ALICE });
    expect(await dovecot.log()).toMatch(/Login: user=<alice@example\.test>, method=\w+, rip=127\.0\.0\.1, lip=127\.0\.0\.1, mpid=\d+, TLS/);
  });

  it('signs in a user whose password is stored hashed (SHA512-CRYPT), allowed domain list honoured', async () => {
    dumpLogOnFailure();
    const hashed = await startDovecot({ users: { [BOB]: BOB_PW }, passwordScheme: 'SHA512-CRYPT' });
    try {
      const auth = createImapAuthenticator({
        host: hashed.host,
        port: hashed.imapsPort,
        security: 'tls',
        ca: hashed.ca,
        allowedDomains: ['OTHER.test'],
      });
      expect(await auth.authenticate(BOB, BOB_PW)).toEqual({ ok: true, address: BOB });
      expect(record(await auth.authenticate(BOB, WRONG_PW))).toMatchObject({ ok: false, reason: 'bad_credentials' });
    } finally {
      await hashed.stop();
    }
  });

  it('answers a wrong password and an unknown user the same way: bad_credentials', async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca });
    const wrong = record(await auth.authenticate(ALICE, WRONG_PW));
    const unknown = record(await auth.authenticate('nobody-here@example.test', WRONG_PW));
    expect(wrong).toMatchObject({ ok: false, reason: 'bad_credentials' });
    expect(unknown).toMatchObject({ ok: false, reason: 'bad_credentials' });
    if (!wrong.ok && !unknown.ok) expect(unknown.detail).toBe(wrong.detail);
  });

  it('reports a broken password database as unavailable, not as a wrong password', async () => {
    dumpLogOnFailure();
    const passwd = path.join(dovecot.dir, 'passwd');
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca });
    const attempt = async () => record(await auth.authenticate(ALICE, ALICE_PW));
    // passwd-file re-opens on a new mtime, checked at most once a second: poll. Unreadable, it
    // makes Dovecot answer NO [UNAVAILABLE] ("Temporary authentication failure").
    chmodSync(passwd, 0o000);
    utimesSync(passwd, new Date(), new Date(Date.now() + 5_000));
    try {
      await expect.poll(attempt, { timeout: 5_000, interval: 200 }).toMatchObject({ ok: false, reason: 'unavailable' });
      expect(details.at(-1)).toMatch(/UNAVAILABLE/);
    } finally {
      chmodSync(passwd, 0o640);
      utimesSync(passwd, new Date(), new Date(Date.now() + 10_000));
    }
    await expect.poll(attempt, { timeout: 5_000, interval: 200 }).toEqual({ ok: true, address: ALICE });
  });

  it('checks certificates by default: the self-signed certificate without ca is a tls_error (implicit TLS and STARTTLS)', async () => {
    dumpLogOnFailure();
    const tls = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls' });
    const starttls = createImapAuthenticator({ ...base(), port: dovecot.imapPort, security: 'starttls' });
    expect(record(await tls.authenticate(ALICE, ALICE_PW))).toMatchObject({ ok: false, reason: 'tls_error' });
    expect(record(await starttls.authenticate(ALICE, ALICE_PW))).toMatchObject({ ok: false, reason: 'tls_error' });
  });

  it('rejects the right certificate for the wrong name (servername mismatch) as a tls_error', async () => {
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca, servername: 'mail.example.test' });
    const r = record(await auth.authenticate(ALICE, ALICE_PW));
    expect(r).toMatchObject({ ok: false, reason: 'tls_error' });
  });

  it('accepts the self-signed certificate when rejectUnauthorized is false', async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', rejectUnauthorized: false });
    expect(await auth.authenticate(ALICE, ALICE_PW)).toEqual({ ok: true, address: ALICE });
  });

  it('speaking TLS to the cleartext port is a tls_error, not bad_credentials', async () => {
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapPort, security: 'tls', ca: dovecot.ca });
    expect(record(await auth.authenticate(ALICE, ALICE_PW))).toMatchObject({ ok: false, reason: 'tls_error' });
  });

  it('works in cleartext on loopback (security none)', async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapPort, security: 'none' });
    expect(await auth.authenticate(ALICE, ALICE_PW)).toEqual({ ok: true, address: ALICE });
  });

  it("passes the end user's IP (ID x-originating-ip), which Dovecot uses from a trusted network", async () => {
    dumpLogOnFailure();
    const auth = createImapAuthenticator({ ...base(), port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca });
    expect(await auth.authenticate(ALICE, ALICE_PW, { clientIp: '203.0.113.7' })).toEqual({ ok: true, address: ALICE });
    expect(await dovecot.log()).toMatch(/Login: user=<alice@example\.test>.*rip=203\.0\.113\.7/);
    await expect(auth.authenticate(ALICE, ALICE_PW, { clientIp: 'not-an-ip' })).rejects.toThrow(TypeError);
  });

  it('the harness mailbox takes an IMAP APPEND and gives the message back', async () => {
    dumpLogOnFailure();
    const client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.imapsPort,
      secure: true,
      tls: { ca: dovecot.ca },
      auth: { user: ALICE, pass: ALICE_PW },
      logger: false,
      disableAutoIdle: true,
    });
    const raw = [
      'From: carol@example.test',
      `To: ${ALICE}`,
      'Subject: restored by APPEND',
      'Message-ID: <append-test@example.test>',
      'Date: Mon, 02 Jun 2025 10:00:00 +0000',
      '',
      'Body line.',
      '',
    ].join('\r\n');
    await client.connect();
    try {
      const appended = await client.append('INBOX', raw, ['\\Seen'], new Date('2025-06-02T10:00:00Z'));
      expect(appended).toBeTruthy();
      const lock = await client.getMailboxLock('INBOX');
      try {
        const msg = await client.fetchOne('*', { source: true, envelope: true, flags: true });
        expect(msg && msg.envelope?.subject).toBe('restored by APPEND');
        expect(msg && msg.source?.toString()).toBe(raw);
        expect(msg && msg.flags?.has('\\Seen')).toBe(true);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout();
    }
    // The message is a file in the user's Maildir, owned by the mail uid (for tests that look on disk).
    const cur = path.join(dovecot.maildirOf(ALICE), 'cur');
    const files = readdirSync(cur);
    expect(files).toHaveLength(1);
    expect(statSync(path.join(cur, files[0] ?? '')).uid).toBe(dovecot.mailUid);
  });
});

// Last in the file (vitest runs a file's tests in order): sees the details of every test above.
describe('details', () => {
  it('never contain a password', () => {
    expect(details.length).toBeGreaterThan(available ? 20 : 15);
    for (const d of details) {
      for (const pw of [ALICE_PW, BOB_PW, WRONG_PW]) expect(d).not.toContain(pw);
    }
  });
});
