/**
 * restoreMessages against a real throwaway Dovecot: bytes, internal date and flags as read back
 * over IMAP, per-message failures, master-user logins, and what happens when the server is not
 * there, refuses, or never answers.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestoreConnectError, restoreMessages, type ImapConnection, type RestoreMessage } from '../../src/restore/imap-restore.js';
import { buildMessage } from '../helpers/archive.js';
import { dovecotAvailable, dovecotUnavailableReason, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { readFolder, sha256 } from '../helpers/mailbox.js';

const ALICE = { user: 'alice@example.test', pass: 'alice-mail-pw-7Hq' };
const MASTER = { name: 'spindle-restore', pass: 'master-pw-Kd93' };

async function* from(items: RestoreMessage[]): AsyncGenerator<RestoreMessage> {
  for (const m of items) yield m;
}
const message = (id: number, subject: string, date: string): RestoreMessage => ({
  id, raw: Buffer.from(buildMessage({ subject, date, body: `body of ${subject}\n\u00e9t\u00e9 \u2603` })), date: new Date(date),
});

describe.skipIf(!dovecotAvailable())('IMAP APPEND restore (real Dovecot)', () => {
  let dovecot: DovecotInstance;
  let conn: ImapConnection;
  beforeAll(async () => {
    dovecot = await startDovecot({ users: { [ALICE.user]: ALICE.pass, 'bob@example.test': 'bob-pw' }, masterUsers: { [MASTER.name]: MASTER.pass } });
    conn = { host: dovecot.host, port: dovecot.imapsPort, security: 'tls', ca: dovecot.ca };
  }, 60_000);
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('appends the exact bytes, unread, with the original date as internal date, into a folder it creates', async () => {
    const items = [message(1, 'first', 'Tue, 05 Mar 2024 10:00:00 +0000'), message(2, 'second', 'Sat, 01 Jan 2022 23:59:59 +0100')];
    const progress: number[] = [];
    let before = 0;
    const r = await restoreMessages({
      connection: conn, auth: ALICE, messages: from(items), onProgress: (p) => progress.push(p.done),
      beforeAppend: async () => void before++,
    });
    expect(r).toEqual({ appended: 2, failed: [], stopped: null, folderCreated: true });
    expect([before, progress]).toEqual([1, [1, 2]]);
    const stored = await readFolder(dovecot, ALICE.user, ALICE.pass, 'Restored');
    expect(stored.map((s) => s.sha256)).toEqual(items.map((m) => sha256(m.raw)));
    expect(stored.map((s) => s.internalDate.toISOString())).toEqual(['2024-03-05T10:00:00.000Z', '2022-01-01T22:59:59.000Z']);
    for (const s of stored) expect(s.flags).not.toContain('\\Seen');
    // Again into the existing folder: no error, nothing replaced.
    const again = await restoreMessages({ connection: conn, auth: ALICE, messages: from(items.slice(0, 1)) });
    expect(again).toMatchObject({ appended: 1, folderCreated: false });
    expect(await readFolder(dovecot, ALICE.user, ALICE.pass, 'Restored')).toHaveLength(3);
  });

  it('a message the server refuses is reported and the rest still go in', async () => {
    const items = [message(1, 'ok one', 'Tue, 05 Mar 2024 10:00:00 +0000'), { id: 2, raw: Buffer.alloc(0), date: new Date() }, message(3, 'ok two', 'Tue, 05 Mar 2024 11:00:00 +0000')];
    const r = await restoreMessages({ connection: conn, auth: ALICE, folder: 'Partial', messages: from(items) });
    expect(r.appended).toBe(2);
    expect(r.failed.map((f) => f.id)).toEqual([2]);
    expect(r.stopped).toBeNull();
    expect(await readFolder(dovecot, ALICE.user, ALICE.pass, 'Partial')).toHaveLength(2);
  });

  it('a master user restores into another mailbox; nothing of its password reaches a result', async () => {
    const auth = { user: `bob@example.test*${MASTER.name}`, pass: MASTER.pass };
    const r = await restoreMessages({ connection: conn, auth, folder: 'Evidence', messages: from([message(9, 'for bob', 'Tue, 05 Mar 2024 10:00:00 +0000')]) });
    expect(r.appended).toBe(1);
    expect(await readFolder(dovecot, 'bob@example.test', 'bob-pw', 'Evidence')).toHaveLength(1);
    // Unknown target mailbox: refused like a wrong password.
    const ghost = restoreMessages({ connection: conn, auth: { user: `ghost@example.test*${MASTER.name}`, pass: MASTER.pass }, messages: from([]) });
    await expect(ghost).rejects.toMatchObject({ reason: 'bad_credentials' });
  });

  it('a wrong password is bad_credentials; nothing is appended and beforeAppend never runs', async () => {
    let before = false;
    const err = await restoreMessages({
      connection: conn, auth: { user: ALICE.user, pass: 'wrong-Zq9-password' }, folder: 'Never',
      messages: from([message(1, 'x', 'Tue, 05 Mar 2024 10:00:00 +0000')]), beforeAppend: async () => void (before = true),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreConnectError);
    expect((err as RestoreConnectError).reason).toBe('bad_credentials');
    expect(JSON.stringify({ ...(err as RestoreConnectError), message: (err as Error).message })).not.toContain('wrong-Zq9-password');
    expect(before).toBe(false);
    expect(await readFolder(dovecot, ALICE.user, ALICE.pass, 'Never')).toEqual([]);
  });

  it('a throw from beforeAppend (the audit entry could not be written) stops it before the first APPEND', async () => {
    const run = restoreMessages({
      connection: conn, auth: ALICE, folder: 'Unaudited', messages: from([message(1, 'x', 'Tue, 05 Mar 2024 10:00:00 +0000')]),
      beforeAppend: async () => { throw new Error('audit trail down'); },
    });
    await expect(run).rejects.toThrow('audit trail down');
    expect(await readFolder(dovecot, ALICE.user, ALICE.pass, 'Unaudited')).toEqual([]);
  });
});
if (!dovecotAvailable()) console.warn(`[skip] IMAP restore tests: ${dovecotUnavailableReason()}`);

describe('restore without a working server', () => {
  it('refuses a bad folder name before connecting', async () => {
    for (const folder of ['', ' x', 'a*b', 'a%', 'x\r\nA1 LOGOUT', '/x', 'x/', 'a//b']) {
      await expect(restoreMessages({ connection: { host: '127.0.0.1', port: 1, security: 'none' }, auth: ALICE, folder, messages: from([]) }))
        .rejects.toMatchObject({ reason: 'folder_refused' });
    }
  });

  it('a closed port is unavailable; a server that never greets is a timeout', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    await expect(restoreMessages({ connection: { host: '127.0.0.1', port: closed, security: 'none' }, auth: ALICE, messages: from([]) }))
      .rejects.toMatchObject({ reason: 'unavailable' });
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const started = Date.now();
      await expect(restoreMessages({ connection: { host: '127.0.0.1', port, security: 'none', timeoutMs: 300 }, auth: ALICE, messages: from([]) }))
        .rejects.toMatchObject({ reason: 'timeout' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.close();
      // close() waits for the connection the client left open; the client closed its side.
    }
  });

  it('refuses cleartext to a host that is not loopback', async () => {
    await expect(restoreMessages({ connection: { host: 'mail.example.com', port: 143, security: 'none' }, auth: ALICE, messages: from([]) }))
      .rejects.toThrow(/only allowed for a loopback host/);
  });
});
