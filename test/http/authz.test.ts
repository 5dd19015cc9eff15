/**
 * Who may see what, on one running archive: every registered route for every kind of caller, and
 * each role's view of the same mail. The fixture, in envelope (bcc-maps) mode:
 *   m1  alice -> bob, Bcc carol          m2  dave -> erin          m3  erin -> alice (Cc bob)
 * Accounts: carol (user, carol@), bob (user, bob@ + alias team@), an auditor, an admin.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createTokenStore } from '../../src/db/tokens.js';
import { createUserStore } from '../../src/db/users.js';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { sendMail } from '../helpers/smtp-client.js';

let archive: TestArchive;
const tokens: Record<string, string> = {};
const ids: Record<string, number> = {};
let base: string;

async function deliver(from: string, rcpts: string[], raw: string): Promise<void> {
  const to = [...rcpts.map((a) => encodeJournalAddress('rcpt', a, 'archive.example')), encodeJournalAddress('from', from, 'archive.example')];
  expect((await sendMail(archive.smtp.port, { from, to }, raw)).code).toBe(250);
}

type Req = { method?: string; url: string; token?: string | null; cookie?: string; csrf?: string; body?: unknown };
async function call(r: Req): Promise<{ status: number; json: () => Promise<Record<string, unknown>>; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (r.token) headers.authorization = `Bearer ${r.token}`;
  if (r.cookie) headers.cookie = r.cookie;
  if (r.csrf) headers['x-csrf-token'] = r.csrf;
  if (r.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${r.url}`, { method: r.method ?? 'GET', headers, ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}) });
  return { status: res.status, headers: res.headers, json: async () => (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
  base = `http://127.0.0.1:${archive.http.port}`;
  await deliver('alice@example.com', ['bob@example.com', 'carol@example.com'],
    buildMessage({ from: 'alice@example.com', to: ['bob@example.com'], subject: 'm1 quarterly plan', body: 'pineapple budget', messageId: 'm1@example.com' }));
  await deliver('dave@example.com', ['erin@example.com'],
    buildMessage({ from: 'dave@example.com', to: ['erin@example.com'], subject: 'm2 private', body: 'pineapple secret', messageId: 'm2@example.com' }));
  await deliver('erin@example.com', ['alice@example.com', 'team@example.com'],
    buildMessage({ from: 'erin@example.com', to: ['alice@example.com'], cc: ['team@example.com'], subject: 'm3 team note', body: 'pineapple team', messageId: 'm3@example.com' }));
  await archive.indexer.idle();
  const db = openDatabase({ file: path.join(archive.config.dataDir, 'spindle.db') });
  const users = createUserStore(db);
  const t = createTokenStore(db);
  const carol = users.create({ name: 'carol', source: 'local', roles: ['user'], addresses: ['carol@example.com'] });
  const bob = users.create({ name: 'bob', source: 'local', roles: ['user'], addresses: ['bob@example.com', 'team@example.com'] });
  tokens.carol = t.create({ role: 'user', name: 'carol', user: carol.id }).token;
  tokens.bob = t.create({ role: 'user', name: 'bob', user: bob.id }).token;
  tokens.auditor = t.create({ role: 'auditor', name: 'officer' }).token;
  tokens.admin = t.create({ role: 'admin', name: 'ops' }).token;
  for (const row of db.prepare('SELECT id, message_id FROM messages').all() as Array<{ id: number; message_id: string }>) ids[row.message_id.split('@')[0]!] = row.id;
  db.close();
}, 60_000);
afterAll(async () => {
  await archive?.close();
});

const subjects = async (token: string, q = 'pineapple') => {
  const r = await call({ url: `/api/search?q=${encodeURIComponent(q)}`, token });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { total: number; items: Array<{ subject: string }> };
  return { total: body.total, subjects: body.items.map((i) => i.subject.split(' ')[0]).sort() };
};

describe('every route, every caller', () => {
  it('answers 401 without credentials and 403 to each role it is not for (default deny)', async () => {
    expect((await call({ url: '/api/health' })).status).toBe(200);
    const routes = archive.routes;
    expect(routes.length).toBeGreaterThanOrEqual(14);
    for (const route of routes) {
      const url = route.url.replace(':id', route.url.startsWith('/api/tokens') ? '0123456789ab' : String(ids.m2)).replace(':name', 'carol');
      const method = route.method;
      if (method === 'HEAD') continue;
      if ('public' in route.access) continue;
      expect((await call({ method, url })).status, `${method} ${route.url} anonymous`).toBe(401);
      for (const who of ['carol', 'auditor', 'admin'] as const) {
        const role = who === 'carol' ? 'user' : who;
        if (!('roles' in route.access) || route.access.roles.includes(role)) continue;
        expect((await call({ method, url, token: tokens[who]!, ...(method !== 'GET' ? { body: {} } : {}) })).status, `${method} ${route.url} as ${role}`).toBe(403);
      }
    }
  });
});

describe("each role's view of the same archive", () => {
  it('an auditor finds everything; an admin reads no mail', async () => {
    expect(await subjects(tokens.auditor!)).toEqual({ total: 3, subjects: ['m1', 'm2', 'm3'] });
    expect((await call({ url: '/api/search?q=pineapple', token: tokens.admin })).status).toBe(403);
    expect((await call({ url: `/api/messages/${ids.m2}`, token: tokens.admin })).status).toBe(403);
  });

  it('a user finds only messages one of their addresses takes part in, aliases included; counts never include the rest', async () => {
    expect(await subjects(tokens.carol!)).toEqual({ total: 1, subjects: ['m1'] }); // Bcc'd on m1
    expect(await subjects(tokens.bob!)).toEqual({ total: 2, subjects: ['m1', 'm3'] }); // To on m1, Cc via alias on m3
    expect(await subjects(tokens.carol!, '')).toEqual({ total: 1, subjects: ['m1'] }); // empty query: list all of "mine"
    expect(await subjects(tokens.carol!, 'secret')).toEqual({ total: 0, subjects: [] }); // m2's word: no hint it exists
  });

  it("someone else's message is a 404, the same as a missing one, on every mail route", async () => {
    for (const suffix of ['', '/raw']) {
      const other = await call({ url: `/api/messages/${ids.m2}${suffix}`, token: tokens.carol });
      const missing = await call({ url: `/api/messages/999999${suffix}`, token: tokens.carol });
      expect([other.status, missing.status]).toEqual([404, 404]);
      expect((await other.json()).error).toEqual({ code: 'not_found', message: `no message ${ids.m2}` });
      expect((await call({ url: `/api/messages/${ids.m1}${suffix}`, token: tokens.carol })).status).toBe(200);
    }
  });

  it('Bcc and envelope recipients: an auditor sees them all; a user sees only their own, and cannot search for them', async () => {
    const kinds = async (token: string) => {
      const m = (await (await call({ url: `/api/messages/${ids.m1}`, token })).json()) as { recipients: Array<{ address: string; kind: string }>; deliveries: Array<{ rcpts: unknown[] }> };
      return { recipients: m.recipients.map((r) => `${r.kind}:${r.address}`).sort(), rcpts: m.deliveries.map((d) => d.rcpts.length) };
    };
    const auditor = await kinds(tokens.auditor!);
    expect(auditor.recipients).toContain('bcc:carol@example.com');
    expect(auditor.rcpts[0]).toBeGreaterThan(0);
    const bob = await kinds(tokens.bob!);
    expect(bob.recipients.filter((r) => r.includes('carol'))).toEqual([]);
    expect(bob.rcpts).toEqual([0]);
    expect((await kinds(tokens.carol!)).recipients).toContain('bcc:carol@example.com');
    // Bob was a recipient of m1, but must not learn that carol was Bcc'd by searching for her.
    expect(await subjects(tokens.bob!, 'carol')).toEqual({ total: 0, subjects: [] });
    expect(await subjects(tokens.bob!, 'bcc:carol@example.com')).toEqual({ total: 0, subjects: [] });
    expect(await subjects(tokens.auditor!, 'bcc:carol@example.com')).toEqual({ total: 1, subjects: ['m1'] });
  });

  it('a disabled account loses access at once, tokens included', async () => {
    const db = openDatabase({ file: path.join(archive.config.dataDir, 'spindle.db') });
    const users = createUserStore(db);
    const dave = users.create({ name: 'dave', source: 'local', roles: ['user'], addresses: ['dave@example.com'] });
    const token = createTokenStore(db).create({ role: 'user', name: 'dave', user: dave.id }).token;
    expect((await call({ url: '/api/search?q=pineapple', token })).status).toBe(200);
    users.setDisabled(dave.id, true);
    db.close();
    expect((await call({ url: '/api/search?q=pineapple', token })).status).toBe(401);
  });
});
