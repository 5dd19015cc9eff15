import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { openAuditTrail, type AuditTrail } from '../../src/audit/trail.js';
import { createArchiveReader } from '../../src/db/archive-reader.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createTokenStore, type Role, type TokenStore } from '../../src/db/tokens.js';
import { buildApp } from '../../src/http/app.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createSearcher } from '../../src/search/search.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { openSmtp } from '../helpers/smtp-client.js';
import { accountDeps } from '../helpers/app.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

interface Harness { app: FastifyInstance; db: Db; audit: AuditTrail; tokens: TokenStore; bearer(role: Role, name?: string): { authorization: string } }
const open: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function harness(log?: Logger, now?: () => Date): Promise<Harness> {
  const dir = tempDir();
  const db = openDatabase({ file: path.join(dir, 'spindle.db') });
  const tokens = createTokenStore(db);
  const audit = await openAuditTrail({ dir: path.join(dir, 'audit'), db, log: silentLog(), ...(now ? { now } : {}) });
  const app = await buildApp({
    reader: createArchiveReader(db), searcher: createSearcher(db), store: createFsBlobStore({ dir: path.join(dir, 'blobs') }),
    tokens, audit, ...accountDeps(db), metrics: createMetrics(), indexLag: () => ({ records: 0, seconds: 0 }), version: 't',
  }, log ? { log } : {});
  open.push(async () => {
    await app.close();
    await audit.close();
    db.close();
  });
  return { app, db, audit, tokens, bearer: (role, name = `${role}-token`) => ({ authorization: `Bearer ${tokens.create({ role, name }).token}` }) };
}

const errorShape = { error: { code: expect.any(String), message: expect.any(String) } };

describe('GET /api/audit', () => {
  it('needs a token; auditors and admins may read, and each read is itself on record', async () => {
    const h = await harness();
    expect((await h.app.inject({ url: '/api/audit' })).statusCode).toBe(401);
    expect((await h.app.inject({ url: '/api/audit', headers: { authorization: 'Bearer spx_nope' } })).json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    const auditor = await h.app.inject({ url: '/api/audit', headers: h.bearer('auditor', 'officer') });
    expect(auditor.statusCode).toBe(200);
    expect(auditor.json()).toEqual({ items: [], next_cursor: null });
    const admin = await h.app.inject({ url: '/api/audit?action=audit.read', headers: h.bearer('admin', 'ops') });
    expect(admin.statusCode).toBe(200);
    const items = admin.json().items as Array<Record<string, unknown>>;
    expect(items).toEqual([{
      seq: 1, ts: expect.any(String), prev: '0'.repeat(64), actor: 'officer', role: 'auditor', source: '127.0.0.1',
      action: 'audit.read', target: null, outcome: 'ok', details: { returned: 0, token_id: expect.stringMatching(/^[0-9a-f]{12}$/) },
    }]);
    expect(h.audit.lastSeq()).toBe(2);
    const last = (await h.audit.query({ limit: 1 })).items[0]!;
    expect(last).toMatchObject({ actor: 'ops', role: 'admin', action: 'audit.read', details: { action: 'audit.read', returned: 1 } });
  });

  it('filters by actor, action, target and time, and pages with a cursor', async () => {
    let clock = Date.parse('2024-03-01T00:00:00Z');
    const h = await harness(undefined, () => new Date((clock += 3_600_000)));
    for (let i = 1; i <= 12; i++) {
      await h.audit.record({ actor: i % 2 ? 'alice' : 'bob', role: 'auditor', source: '10.0.0.9', action: i % 3 ? 'message.view' : 'search', target: String(i), outcome: 'ok' });
    }
    const auth = h.bearer('auditor');
    const get = async (qs: string) => {
      const res = await h.app.inject({ url: `/api/audit?${qs}`, headers: auth });
      expect(res.statusCode, qs).toBe(200);
      return res.json() as { items: Array<{ seq: number }>; next_cursor: string | null };
    };
    expect((await get('actor=alice&action=message.view')).items.map((e) => e.seq)).toEqual([11, 7, 5, 1]);
    expect((await get('target=6')).items.map((e) => e.seq)).toEqual([6]);
    expect((await get('since=2024-03-01T03:00:00Z&until=2024-03-01T06:00:00Z&actor=bob')).items.map((e) => e.seq)).toEqual([4]);
    const first = await get('actor=bob&limit=4');
    expect(first.items.map((e) => e.seq)).toEqual([12, 10, 8, 6]);
    const second = await get(`actor=bob&limit=4&cursor=${first.next_cursor!}`);
    expect(second).toEqual({ items: [expect.objectContaining({ seq: 4 }), expect.objectContaining({ seq: 2 })], next_cursor: null });
  });

  it('bad filters are a 400 in the one error shape', async () => {
    const h = await harness();
    const auth = h.bearer('auditor');
    const cases: Array<[string, string]> = [
      ['since=yesterday', 'bad_request'], ['until=2024-02-30', 'bad_request'], ['action=peek', 'bad_request'],
      ['limit=0', 'bad_request'], ['limit=501', 'bad_request'], ['cursor=abc', 'bad_cursor'], ['colour=red', 'bad_request'],
    ];
    for (const [qs, code] of cases) {
      const res = await h.app.inject({ url: `/api/audit?${qs}`, headers: auth });
      expect(res.statusCode, qs).toBe(400);
      expect(res.json(), qs).toEqual(errorShape);
      expect(res.json().error.code, qs).toBe(code);
    }
  });
});

describe('reads of mail are on record', () => {
  it('records searches (also refused ones) and misses on message routes', async () => {
    const h = await harness();
    const auth = h.bearer('auditor', 'officer');
    expect((await h.app.inject({ url: '/api/search?q=invoice', headers: auth })).statusCode).toBe(200);
    expect((await h.app.inject({ url: '/api/search?q=%22open', headers: auth })).statusCode).toBe(400);
    expect((await h.app.inject({ url: '/api/messages/42', headers: auth })).statusCode).toBe(404);
    expect((await h.app.inject({ url: '/api/messages/43/raw', headers: auth })).statusCode).toBe(404);
    const items = (await h.audit.query({})).items;
    expect(items.map((e) => [e.action, e.target, e.outcome, e.actor])).toEqual([
      ['message.raw', '43', 'failed', 'officer'], ['message.view', '42', 'failed', 'officer'],
      ['search', null, 'failed', 'officer'], ['search', null, 'ok', 'officer'],
    ]);
    expect(items[3]!.details).toMatchObject({ query: 'invoice', hits: 0 });
    expect(items[2]!.details).toMatchObject({ query: '"open', error: 'bad_query' });
  });

  it('shows nothing when the trail cannot be written', async () => {
    const h = await harness();
    const auth = h.bearer('auditor');
    await h.audit.close();
    const res = await h.app.inject({ url: '/api/search?q=x', headers: auth });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: { code: 'audit_unavailable', message: expect.any(String) } });
  });

  it('never writes a bearer token to the log', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'trace', format: 'json', destination: { write: (s: string) => void lines.push(s) } });
    const h = await harness(log);
    const secret = h.tokens.create({ role: 'auditor', name: 'officer' }).token;
    const headers = { authorization: `Bearer ${secret}` };
    for (const url of ['/api/search?q=x', '/api/messages/1', '/api/audit', '/api/stats', '/nope']) await h.app.inject({ url, headers });
    await h.app.inject({ url: '/api/search', headers: { authorization: 'Bearer spx_wrong-secret-value' } });
    await h.audit.close();
    expect((await h.app.inject({ url: '/api/search?q=x', headers })).statusCode).toBe(503);
    const output = lines.join('');
    expect(output).toContain('audit.write_failed');
    expect(output).not.toContain(secret);
    expect(output).not.toContain(secret.slice(4));
    expect(output).not.toContain('spx_wrong-secret-value');
  });
});

describe('audit trail on a running archive', () => {
  let archive: TestArchive | null = null;
  afterEach(async () => {
    await archive?.close();
    archive = null;
  });

  it('a search, a view and a raw download each leave an entry with actor, target and hits', async () => {
    archive = await startTestArchive();
    const session = await openSmtp(archive.smtp.port);
    expect((await session.send({ from: 'a@example.com', to: ['archive@localhost'] }, buildMessage({ subject: 'quarterly figures', body: 'confidential numbers' }))).code).toBe(250);
    await session.close();
    await archive.indexer.idle();

    const found = await archive.api<{ total: number; items: Array<{ id: number }> }>('/api/search?q=confidential');
    expect(found.body.total).toBe(1);
    const id = String(found.body.items[0]!.id);
    expect((await archive.api(`/api/messages/${id}`)).status).toBe(200);
    expect((await archive.api(`/api/messages/${id}/raw`)).status).toBe(200);

    const trail = await archive.api<{ items: Array<Record<string, unknown>> }>('/api/audit?actor=test-auditor', 'admin');
    expect(trail.status).toBe(200);
    expect(trail.body.items).toEqual([
      expect.objectContaining({ action: 'message.raw', target: id, outcome: 'ok', actor: 'test-auditor', role: 'auditor', source: '127.0.0.1' }),
      expect.objectContaining({ action: 'message.view', target: id, outcome: 'ok', actor: 'test-auditor' }),
      expect.objectContaining({ action: 'search', target: null, outcome: 'ok', details: expect.objectContaining({ query: 'confidential', hits: 1 }) }),
    ]);
  }, 60_000);
});
