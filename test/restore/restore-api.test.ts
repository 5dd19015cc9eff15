/**
 * POST /api/restore on a running archive whose mail server is a throwaway Dovecot. The fixture,
 * in envelope (bcc-maps) mode:
 *   m1  alice -> bob              m2  dave -> erin              m3  erin -> alice (Cc bob)
 * alice and bob are mailboxes on Dovecot; alice signs in to Spindle with her mail password.
 * Dovecot has a master user for auditors' restores.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createTokenStore } from '../../src/db/tokens.js';
import { createUserStore } from '../../src/db/users.js';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import { createLogger } from '../../src/log/logger.js';
import { startArchiver, type RunningArchiver } from '../../src/runtime/archiver.js';
import { buildMessage, startTestArchive, testConfig, type TestArchive } from '../helpers/archive.js';
import { dovecotAvailable, dovecotUnavailableReason, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { readFolder } from '../helpers/mailbox.js';
import { sendMail } from '../helpers/smtp-client.js';
import { tempDir } from '../helpers/tmp.js';

const ALICE_PW = 'alice-mail-pw-Rt5';
const BOB_PW = 'bob-mail-pw-Lm2';
const MASTER_PW = 'master-pw-Vq8-secret';
const WRONG_PW = 'wrong-pw-Zq9';
const DATES = { m1: 'Tue, 05 Mar 2024 10:00:00 +0000', m2: 'Sat, 01 Jul 2023 08:30:00 +0200', m3: 'Mon, 15 Jan 2024 16:45:10 -0500' };

type Json = Record<string, unknown>;
interface Entry { actor: string; action: string; target: string | null; outcome: string; details: Record<string, string | number | boolean | null> }

describe.skipIf(!dovecotAvailable())('restore over the API (real Dovecot)', () => {
  let dovecot: DovecotInstance;
  let archiver: RunningArchiver;
  let dataDir: string;
  let base: string;
  const logs: string[] = [];
  const ids: Record<string, number> = {};
  const sha: Record<string, string> = {};
  const tokens: Record<string, string> = {};
  let alice: { cookie: string; csrf: string };
  const extra: TestArchive[] = [];

  const call = async (method: string, url: string, opts: { token?: string; session?: { cookie: string; csrf: string }; body?: unknown } = {}) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.session) Object.assign(headers, { cookie: opts.session.cookie, 'x-csrf-token': opts.session.csrf });
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${url}`, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  const restoreAsAlice = (body: Json) => call('POST', '/api/restore', { session: alice, body });
  const restoreAsAuditor = (body: Json) => call('POST', '/api/restore', { token: tokens.auditor!, body });
  const restoreEntries = async (): Promise<Entry[]> => {
    const r = await call('GET', '/api/audit?action=restore&limit=500', { token: tokens.admin! });
    return (r.body.items as Entry[]).reverse();
  };
  const entriesOf = async (restoreId: unknown) => (await restoreEntries()).filter((e) => e.details.restore_id === restoreId);

  beforeAll(async () => {
    dovecot = await startDovecot({
      users: { 'alice@example.com': ALICE_PW, 'bob@example.com': BOB_PW }, masterUsers: { 'spindle-restore': MASTER_PW },
    });
    const caFile = path.join(tempDir(), 'ca.pem');
    fs.writeFileSync(caFile, dovecot.ca);
    dataDir = tempDir();
    const log = createLogger({ level: 'debug', format: 'json', destination: new Writable({ write(c: Buffer, _e, cb) { logs.push(c.toString()); cb(); } }) });
    archiver = await startArchiver(testConfig({
      SPINDLE_ARCHIVE_ADDRESSES: '@archive.example',
      SPINDLE_IMAP_HOST: '127.0.0.1', SPINDLE_IMAP_PORT: String(dovecot.imapsPort), SPINDLE_IMAP_SECURITY: 'tls', SPINDLE_IMAP_CA: caFile,
      SPINDLE_RESTORE_IMAP_USER: 'spindle-restore', SPINDLE_RESTORE_IMAP_PASSWORD: MASTER_PW,
    }, dataDir), log);
    base = `http://127.0.0.1:${archiver.http.port}`;
    const deliver = async (name: keyof typeof DATES, from: string, rcpts: string[], cc: string[] = []) => {
      const raw = buildMessage({ from, to: rcpts.filter((r) => !cc.includes(r)), cc, subject: `${name} pineapple`, body: `pineapple ${name}`, messageId: `${name}@example.com`, date: DATES[name] });
      const to = [...rcpts.map((a) => encodeJournalAddress('rcpt', a, 'archive.example')), encodeJournalAddress('from', from, 'archive.example')];
      expect((await sendMail(archiver.smtp.port, { from, to }, raw)).code).toBe(250);
    };
    await deliver('m1', 'alice@example.com', ['bob@example.com']);
    await deliver('m2', 'dave@example.com', ['erin@example.com']);
    await deliver('m3', 'erin@example.com', ['alice@example.com', 'bob@example.com'], ['bob@example.com']);
    await archiver.indexer.idle();

    const db = openDatabase({ file: path.join(dataDir, 'spindle.db') });
    const t = createTokenStore(db);
    const carol = createUserStore(db).create({ name: 'carol', source: 'local', roles: ['user'], addresses: ['carol@example.com'] });
    tokens.carol = t.create({ role: 'user', name: 'carol', user: carol.id }).token;
    tokens.auditor = t.create({ role: 'auditor', name: 'officer' }).token;
    tokens.admin = t.create({ role: 'admin', name: 'ops' }).token;
    for (const row of db.prepare('SELECT id, message_id, blob_sha256 FROM messages').all() as Array<{ id: number; message_id: string; blob_sha256: string }>) {
      const name = row.message_id.split('@')[0]!;
      ids[name] = row.id;
      sha[name] = row.blob_sha256;
    }
    db.close();

    const signIn = await fetch(`${base}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice@example.com', password: ALICE_PW }),
    });
    expect(signIn.status).toBe(200);
    alice = { cookie: String(signIn.headers.get('set-cookie')).split(';')[0]!, csrf: ((await signIn.json()) as { csrf: string }).csrf };
  }, 90_000);
  afterAll(async () => {
    for (const a of extra) await a.close();
    await archiver?.close();
    await dovecot?.stop();
  });

  it('a user restores their own mail with their mail password: exact bytes, original date, unread; others are skipped, never appended', async () => {
    const r = await restoreAsAlice({ ids: [ids.m3, ids.m1, ids.m2, 999_999], password: ALICE_PW });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ mailbox: 'alice@example.com', folder: 'Restored', selected: 2, appended: 2, failed: [], stopped: null });
    // Someone else's message and a missing one look the same.
    expect(r.body.skipped).toEqual([999_999, ids.m2].sort((a, b) => a! - b!));

    const stored = await readFolder(dovecot, 'alice@example.com', ALICE_PW, 'Restored');
    // Oldest first: m3 (January) before m1 (March).
    expect(stored.map((s) => s.sha256)).toEqual([sha.m3, sha.m1]);
    expect(stored.map((s) => s.internalDate.getTime())).toEqual([Date.parse(DATES.m3), Date.parse(DATES.m1)]);
    for (const s of stored) expect(s.flags).not.toContain('\\Seen');

    const entries = await entriesOf(r.body.restore_id);
    expect(entries.map((e) => [e.details.stage, e.outcome, e.actor, e.target])).toEqual([
      ['start', 'ok', 'alice@example.com', 'alice@example.com'],
      ['done', 'denied', 'alice@example.com', 'alice@example.com'], // the request named someone else's message
    ]);
    expect(entries[1]!.details).toMatchObject({ method: 'own', folder: 'Restored', ids_count: 4, selected: 2, appended: 2, failed: 0, not_participant: 1, not_found: 1 });
  });

  it('a wrong mail password is 401 and appends nothing; the attempt is on record', async () => {
    const r = await restoreAsAlice({ ids: [ids.m1], password: WRONG_PW, folder: 'WrongPw' });
    expect([r.status, r.body]).toEqual([401, { error: { code: 'bad_credentials', message: 'wrong mail password' } }]);
    expect(await readFolder(dovecot, 'alice@example.com', ALICE_PW, 'WrongPw')).toEqual([]);
    const last = (await restoreEntries()).at(-1)!;
    expect([last.details.stage, last.outcome, last.details.error]).toEqual(['refused', 'denied', 'bad_credentials']);
  });

  it("a request for only someone else's mail appends nothing and is recorded as denied", async () => {
    const r = await restoreAsAlice({ ids: [ids.m2], password: ALICE_PW, folder: 'NotMine' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ selected: 0, appended: 0, skipped: [ids.m2] });
    expect(await readFolder(dovecot, 'alice@example.com', ALICE_PW, 'NotMine')).toEqual([]);
    expect((await entriesOf(r.body.restore_id)).map((e) => [e.details.stage, e.outcome])).toEqual([['done', 'denied']]);
  });

  it('a user query restores only their own matches', async () => {
    const r = await restoreAsAlice({ query: 'pineapple', password: ALICE_PW, folder: 'ByQuery' });
    expect(r.body).toMatchObject({ selected: 2, appended: 2, skipped: [] });
    expect((await readFolder(dovecot, 'alice@example.com', ALICE_PW, 'ByQuery')).map((s) => s.sha256)).toEqual([sha.m3, sha.m1]);
  });

  it('only an IMAP account restores into its own mailbox, and only auditors into another', async () => {
    const local = await call('POST', '/api/restore', { token: tokens.carol!, body: { ids: [ids.m1], password: 'x' } });
    expect([local.status, (local.body.error as Json).code]).toEqual([403, 'no_mail_login']);
    const other = await restoreAsAlice({ ids: [ids.m1], mailbox: 'bob@example.com' });
    expect([other.status, (other.body.error as Json).code]).toEqual([403, 'forbidden']);
    expect((await call('POST', '/api/restore', { token: tokens.admin!, body: { ids: [ids.m1], mailbox: 'bob@example.com' } })).status).toBe(403);
    const tail = (await restoreEntries()).slice(-2);
    expect(tail.map((e) => [e.actor, e.outcome, e.details.error])).toEqual([['carol', 'denied', 'no_mail_login'], ['alice@example.com', 'denied', 'forbidden']]);
  });

  it('an auditor restores any message into a given mailbox with the master user', async () => {
    const r = await restoreAsAuditor({ ids: [ids.m2], mailbox: 'Bob@Example.com', folder: 'Evidence' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ mailbox: 'bob@example.com', folder: 'Evidence', appended: 1, skipped: [] });
    const stored = await readFolder(dovecot, 'bob@example.com', BOB_PW, 'Evidence');
    expect(stored.map((s) => [s.sha256, s.internalDate.getTime()])).toEqual([[sha.m2, Date.parse(DATES.m2)]]);
    expect(stored[0]!.flags).not.toContain('\\Seen');
    const byQuery = await restoreAsAuditor({ query: 'pineapple', mailbox: 'bob@example.com' });
    expect(byQuery.body).toMatchObject({ selected: 3, appended: 3 });
    const entries = await entriesOf(byQuery.body.restore_id);
    expect(entries.map((e) => [e.details.stage, e.outcome, e.actor, e.target])).toEqual([
      ['start', 'ok', 'officer', 'bob@example.com'], ['done', 'ok', 'officer', 'bob@example.com'],
    ]);
    expect(entries[1]!.details).toMatchObject({ method: 'master', query: 'pineapple', appended: 3 });
  });

  it('an auditor restore into a mailbox the server does not know is refused (502); bad input is 400', async () => {
    const ghost = await restoreAsAuditor({ ids: [ids.m1], mailbox: 'ghost@example.com' });
    expect([ghost.status, (ghost.body.error as Json).code]).toEqual([502, 'restore_login_refused']);
    const last = (await restoreEntries()).at(-1)!;
    expect([last.target, last.outcome, last.details.stage]).toEqual(['ghost@example.com', 'failed', 'refused']);
    const bad: Array<[Json, string]> = [
      [{ ids: [ids.m1], query: 'x', mailbox: 'bob@example.com' }, 'bad_request'],
      [{ ids: [ids.m1] }, 'bad_request'],
      [{ ids: [ids.m1], mailbox: 'bob@example.com', password: 'x' }, 'bad_request'],
      [{ ids: [ids.m1], mailbox: 'not an address' }, 'bad_request'],
      [{ ids: [ids.m1], mailbox: 'bob@example.com', folder: 'a*' }, 'bad_folder'],
      [{ ids: Array.from({ length: 1001 }, (_, i) => i + 1), mailbox: 'bob@example.com' }, 'bad_request'],
      [{ query: '"unbalanced', mailbox: 'bob@example.com' }, 'bad_query'],
    ];
    for (const [body, code] of bad) {
      const r = await restoreAsAuditor(body);
      expect([r.status, (r.body.error as Json).code], JSON.stringify(body)).toEqual([400, code]);
    }
  });

  it('without the master user, or without the mail server, restores answer 400 restore_not_configured', async () => {
    const noMaster = await startTestArchive({ SPINDLE_IMAP_HOST: '127.0.0.1', SPINDLE_IMAP_PORT: String(dovecot.imapPort), SPINDLE_IMAP_SECURITY: 'none' });
    extra.push(noMaster);
    const noImap = await startTestArchive();
    extra.push(noImap);
    for (const [a, hint] of [[noMaster, /SPINDLE_RESTORE_IMAP_USER/], [noImap, /SPINDLE_IMAP_HOST/]] as const) {
      const res = await fetch(`http://127.0.0.1:${a.http.port}/api/restore`, {
        method: 'POST', headers: { authorization: `Bearer ${a.token('auditor')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ids: [1], mailbox: 'bob@example.com' }),
      });
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect([res.status, body.error.code]).toEqual([400, 'restore_not_configured']);
      expect(body.error.message).toMatch(hint);
      const audit = await a.api<{ items: Entry[] }>('/api/audit?action=restore', 'admin');
      expect(audit.body.items.map((e) => [e.outcome, e.details.error])).toEqual([['failed', 'restore_not_configured']]);
    }
  });

  it('no password reaches the log or the audit trail', async () => {
    const auditText = fs.readdirSync(path.join(dataDir, 'audit')).filter((f) => f.endsWith('.jsonl'))
      .map((f) => fs.readFileSync(path.join(dataDir, 'audit', f), 'utf8')).join('');
    expect(auditText).toContain('"action":"restore"');
    const logText = logs.join('');
    expect(logText).toContain('restore.done');
    for (const secret of [ALICE_PW, BOB_PW, MASTER_PW, WRONG_PW]) {
      expect(auditText).not.toContain(secret);
      expect(logText).not.toContain(secret);
    }
  });
});
if (!dovecotAvailable()) console.warn(`[skip] restore API tests: ${dovecotUnavailableReason()}`);
