/**
 * GET /api/export on a running archive (the fixture of fixture.ts), imitating
 * test/http/authz.test.ts: accounts carol (user, carol@: Bcc'd on m1 only), bob (user, bob@ +
 * alias team@: m1, m3, m4), olivia (admin + auditor), adam (admin only); an auditor token.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/password.js';
import { openDatabase } from '../../src/db/database.js';
import { createTokenStore } from '../../src/db/tokens.js';
import { createUserStore } from '../../src/db/users.js';
import { startTestArchive, type TestArchive } from '../helpers/archive.js';
import { tempDir } from '../helpers/tmp.js';
import { ARCHIVE_ENV, seedExportFixture, type FixtureMessage } from './fixture.js';
import { readMboxWithPython, readZipWithPython } from './python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const PASSWORD = 'correct horse battery staple';
let archive: TestArchive;
let messages: Array<FixtureMessage & { id: number }>;
const tokens: Record<string, string> = {};
const cookies: Record<string, string> = {};

interface Got { status: number; headers: http.IncomingHttpHeaders; body: Buffer; trailers: NodeJS.Dict<string>; complete: boolean }

/** A raw GET, to see trailers and whether the body ended properly. */
function get(url: string, auth: { token?: string; cookie?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
    if (auth.cookie) headers.cookie = auth.cookie;
    const req = http.get({ host: '127.0.0.1', port: archive.http.port, path: url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, complete: res.complete });
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
  });
}

function saved(body: Buffer): string {
  const file = path.join(tempDir(), 'download');
  fs.writeFileSync(file, body);
  return file;
}
const mboxOf = (body: Buffer) => readMboxWithPython(saved(body));
const zipOf = (body: Buffer) => readZipWithPython(saved(body));
const keysOf = async (body: Buffer) => (await mboxOf(body)).map((m) => messages.find((f) => f.sha256 === m.sha256)?.key ?? 'foreign');

async function auditEntries(target: string): Promise<Array<{ outcome: string; actor: string; details: Record<string, unknown> }>> {
  const res = await fetch(`http://127.0.0.1:${archive.http.port}/api/audit?action=export&target=${target}`, { headers: { authorization: `Bearer ${tokens.auditor}` } });
  const body = (await res.json()) as { items: Array<{ outcome: string; actor: string; details: Record<string, unknown> }> };
  return body.items.reverse();
}

beforeAll(async () => {
  const dataDir = tempDir();
  messages = await seedExportFixture(dataDir);
  archive = await startTestArchive(ARCHIVE_ENV, dataDir);
  const db = openDatabase({ file: path.join(dataDir, 'spindle.db') });
  const users = createUserStore(db);
  const t = createTokenStore(db);
  const hash = await hashPassword(PASSWORD);
  const carol = users.create({ name: 'carol', source: 'local', roles: ['user'], addresses: ['carol@example.com'] });
  const bob = users.create({ name: 'bob', source: 'local', roles: ['user'], addresses: ['bob@example.com', 'team@example.com'] });
  users.create({ name: 'olivia', source: 'local', roles: ['admin', 'auditor'], passwordHash: hash });
  users.create({ name: 'adam', source: 'local', roles: ['admin'], passwordHash: hash });
  tokens.carol = t.create({ role: 'user', name: 'carol', user: carol.id }).token;
  tokens.bob = t.create({ role: 'user', name: 'bob', user: bob.id }).token;
  tokens.auditor = t.create({ role: 'auditor', name: 'officer' }).token;
  tokens.admin = t.create({ role: 'admin', name: 'ops' }).token;
  db.close();
  for (const name of ['olivia', 'adam']) {
    const res = await fetch(`http://127.0.0.1:${archive.http.port}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: name, password: PASSWORD }),
    });
    expect(res.status).toBe(200);
    cookies[name] = res.headers.get('set-cookie')!.split(';')[0]!;
  }
}, 90_000);
afterAll(async () => {
  await archive?.close();
});

describe('who may export', () => {
  it('nobody anonymously; not an admin alone; an admin who is also an auditor, yes', async () => {
    expect((await get('/api/export?q=')).status).toBe(401);
    expect((await get('/api/export?q=', { token: tokens.admin })).status).toBe(403);
    expect((await get('/api/export?q=', { cookie: cookies.adam })).status).toBe(403);
    const olivia = await get('/api/export?q=', { cookie: cookies.olivia });
    expect(olivia.status).toBe(200);
    expect(await keysOf(olivia.body)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });

  it("a user's export holds only mail they take part in, whatever they select (search, mailbox, domain)", async () => {
    const cases: Array<[string, string, string[]]> = [
      ['carol', 'q=', ['m1']],
      ['carol', 'q=pineapple', ['m1']],
      ['carol', 'q=secret', []],
      ['carol', `q=${encodeURIComponent('bcc:carol@example.com')}`, []], // Bcc columns are not searchable for a user
      ['carol', 'mailbox=dave@example.com,erin@example.com', []],
      ['carol', 'mailbox=alice@example.com', ['m1']],
      ['carol', 'domain=example.com', ['m1']],
      ['carol', 'domain=other.example', []],
      ['bob', 'q=', ['m1', 'm3', 'm4']],
      ['bob', 'mailbox=erin@example.com', ['m3']],
      ['bob', 'domain=example.com&after=2024-03-02&before=2024-03-04', ['m3']],
    ];
    for (const [who, query, expected] of cases) {
      const res = await get(`/api/export?${query}`, { token: tokens[who] });
      expect(res.status, `${who} ${query}`).toBe(200);
      expect(res.headers['x-spindle-export-count'], `${who} ${query}`).toBe(String(expected.length));
      expect(await keysOf(res.body), `${who} ${query}`).toEqual(expected);
    }
    const zip = await get('/api/export?mailbox=erin@example.com&format=zip', { token: tokens.carol });
    const read = await zipOf(zip.body);
    expect(read.entries.map((e) => e.name)).toEqual(['manifest.csv', 'manifest.json']);
  });
});

describe('the download', () => {
  it('mbox: byte-exact messages, count up front, digest in a trailer and on the audit trail, before and after', async () => {
    const res = await get('/api/export?q=&after=2024-03-01', { token: tokens.auditor });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.headers['content-type']).toBe('application/mbox');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="spindle-export-\d{8}-\d{6}\.mbox"$/);
    expect(res.headers['x-spindle-export-count']).toBe('6');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.trailers['x-spindle-export-sha256']).toBe(sha(res.body));
    const read = await mboxOf(res.body);
    expect(read.map((m) => m.sha256)).toEqual(messages.map((m) => m.sha256));

    const id = res.headers['x-spindle-export-id'] as string;
    const entries = await auditEntries(id);
    expect(entries.map((e) => [e.actor, e.outcome, e.details.phase])).toEqual([['officer', 'ok', 'start'], ['officer', 'ok', 'end']]);
    expect(entries[0]!.details).toMatchObject({ query: '', after: '2024-03-01', before: null, format: 'mbox', count: 6 });
    expect(entries[1]!.details).toMatchObject({ query: '', count: 6, digest: sha(res.body), bytes: messages.reduce((n, m) => n + m.raw.length, 0) });
  });

  it('zip: entries hash to the manifest and to the archived blobs', async () => {
    const res = await get('/api/export?mailbox=bob@example.com&format=zip', { token: tokens.bob });
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.trailers['x-spindle-export-sha256']).toBe(sha(res.body));
    const zip = await zipOf(res.body);
    expect(zip.bad).toBeNull();
    expect(zip.manifest.map((r) => r.sha256)).toEqual(['m1', 'm4'].map((k) => messages.find((m) => m.key === k)!.sha256));
    expect(zip.manifest.map((r) => r.sha256)).toEqual(zip.entries.slice(0, 2).map((e) => e.sha256));
    const entries = await auditEntries(res.headers['x-spindle-export-id'] as string);
    expect(entries.map((e) => [e.actor, e.outcome])).toEqual([['bob', 'ok'], ['bob', 'ok']]);
    expect(entries[0]!.details).toMatchObject({ mailbox: 'bob@example.com', format: 'zip', count: 2 });
  });

  it('refuses unclear requests with 400, and records refused queries', async () => {
    const bad = async (q: string) => {
      const res = await get(`/api/export?${q}`, { token: tokens.auditor });
      return [res.status, (JSON.parse(res.body.toString()) as { error: { code: string } }).error.code];
    };
    expect(await bad('')).toEqual([400, 'bad_request']);
    expect(await bad('q=a&domain=example.com')).toEqual([400, 'bad_request']);
    expect(await bad('q=a&format=dir')).toEqual([400, 'bad_request']);
    expect(await bad('q=a&limit=5')).toEqual([400, 'bad_request']);
    expect(await bad('q=a&after=2024-3-1')).toEqual([400, 'bad_request']);
    expect(await bad('q=%28unclosed')).toEqual([400, 'bad_query']);
    expect(await bad('mailbox=nobody')).toEqual([400, 'bad_selection']);
    const res = await fetch(`http://127.0.0.1:${archive.http.port}/api/audit?action=export`, { headers: { authorization: `Bearer ${tokens.auditor}` } });
    const items = ((await res.json()) as { items: Array<{ outcome: string; details: Record<string, unknown> }> }).items;
    expect(items.find((e) => e.details.query === '(unclosed')).toMatchObject({ outcome: 'failed', details: { error: 'bad_query' } });
  });

  it('a read failure mid-download ends the body incomplete and is recorded as failed', async () => {
    const m4 = messages.find((m) => m.key === 'm4')!;
    const blob = path.join(archive.config.dataDir, 'blobs', m4.sha256.slice(0, 2), m4.sha256.slice(2, 4), `${m4.sha256}.eml.gz`);
    fs.writeFileSync(blob, zlib.gzipSync(Buffer.from('tampered')));
    const res = await get('/api/export?q=', { token: tokens.auditor });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.trailers['x-spindle-export-sha256']).toBeUndefined();
    const id = res.headers['x-spindle-export-id'] as string;
    let entries = await auditEntries(id);
    for (let i = 0; i < 50 && entries.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      entries = await auditEntries(id);
    }
    expect(entries.map((e) => [e.outcome, e.details.phase])).toEqual([['ok', 'start'], ['failed', 'end']]);
    expect(entries[1]!.details).toMatchObject({ count: 3, error: expect.stringMatching(/read back as/) });
  });
});
