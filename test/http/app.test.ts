import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { openAuditTrail, type AuditTrail } from '../../src/audit/trail.js';
import { createArchiveReader } from '../../src/db/archive-reader.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createTokenStore, ROLES, type TokenStore } from '../../src/db/tokens.js';
import { buildApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createSearcher } from '../../src/search/search.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { accountDeps } from '../helpers/app.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

let db: Db;
let app: FastifyInstance;
let tokens: TokenStore;
let audit: AuditTrail;

beforeEach(async () => {
  const dir = tempDir();
  db = openDatabase({ file: path.join(dir, 'spindle.db') });
  tokens = createTokenStore(db);
  audit = await openAuditTrail({ dir: path.join(dir, 'audit'), db, log: silentLog() });
  app = await buildApp({
    reader: createArchiveReader(db), searcher: createSearcher(db), store: createFsBlobStore({ dir: path.join(dir, 'blobs') }),
    tokens, audit, ...accountDeps(db), metrics: createMetrics(), indexLag: () => ({ records: 0, seconds: 0 }), version: '0.0.0-test',
  });
  await app.ready();
});
afterEach(async () => {
  await app.close();
  await audit.close();
  db.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const errorShape = { error: { code: expect.any(String), message: expect.any(String) } };

describe('HTTP API access', () => {
  it('health needs no credentials and reports version and index lag', async () => {
    const res = await app.inject({ url: '/api/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', version: '0.0.0-test', index_lag: { records: 0, seconds: 0 } });
  });

  it('every route has an access rule; every non-public route answers 401 without or with a bad token', async () => {
    expect(app.routeTable.length).toBeGreaterThanOrEqual(6);
    for (const route of app.routeTable) {
      if ('public' in route.access) continue;
      const url = route.url.replace(':id', '1');
      for (const headers of [{}, bearer('spx_not-a-real-token'), { authorization: 'Basic YTpi' }]) {
        const res = await app.inject({ method: route.method as 'GET', url, headers });
        expect(res.statusCode, `${route.method} ${route.url}`).toBe(401);
        if (route.method !== 'HEAD') expect(res.json()).toEqual(errorShape);
      }
    }
  });

  it('each role gets 403 on routes not meant for it, and a revoked token is refused', async () => {
    for (const role of ROLES) {
      const user = role === 'user' ? accountDeps(db).users.create({ name: 'carol', source: 'local', roles: ['user'], addresses: ['carol@example.com'] }).id : null;
      const { token } = tokens.create({ role, name: role, user });
      for (const route of app.routeTable) {
        if (!('roles' in route.access) || route.access.roles.includes(role)) continue;
        const res = await app.inject({ method: route.method as 'GET', url: route.url.replace(':id', '1'), headers: bearer(token) });
        expect(res.statusCode, `${role} ${route.method} ${route.url}`).toBe(403);
      }
    }
    const { token, info } = tokens.create({ role: 'auditor', name: 'gone' });
    expect((await app.inject({ url: '/api/search?q=x', headers: bearer(token) })).statusCode).toBe(200);
    tokens.revoke(info.id);
    expect((await app.inject({ url: '/api/search?q=x', headers: bearer(token) })).statusCode).toBe(401);
  });

  it('an admin may read stats and metrics but not mail', async () => {
    const { token } = tokens.create({ role: 'admin', name: 'ops' });
    expect((await app.inject({ url: '/api/stats', headers: bearer(token) })).statusCode).toBe(200);
    const metrics = await app.inject({ url: '/metrics', headers: bearer(token) });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/^# HELP spindle_messages/m);
    expect(metrics.body).toMatch(/spindle_index_lag_records 0/);
    expect((await app.inject({ url: '/api/search?q=x', headers: bearer(token) })).statusCode).toBe(403);
  });

  it('a route registered without an access rule stops the app from starting', async () => {
    const dir = tempDir();
    const db2 = openDatabase({ file: path.join(dir, 'x.db') });
    const bad = await buildApp({
      reader: createArchiveReader(db2), searcher: createSearcher(db2), store: createFsBlobStore({ dir: path.join(dir, 'blobs') }),
      tokens: createTokenStore(db2), audit, ...accountDeps(db2), metrics: createMetrics(), indexLag: () => ({ records: 0, seconds: 0 }), version: 't',
    });
    expect(() => bad.get('/api/oops', async () => 'leak')).toThrow(/no access rule/);
    await bad.close();
    db2.close();
  });
});

describe('HTTP API errors', () => {
  it('a malformed query is a 400 that says what is wrong, never a 500', async () => {
    const { token } = tokens.create({ role: 'auditor', name: 'a' });
    for (const q of ['"unterminated', 'from:', '-only', 'after:2024-13-01', 'a OR', '((((((((((deep))))))))))']) {
      const res = await app.inject({ url: `/api/search?q=${encodeURIComponent(q)}`, headers: bearer(token) });
      expect(res.statusCode, q).toBe(400);
      expect(res.json()).toEqual(errorShape);
      expect(res.json().error.code).toBe('bad_query');
    }
  });

  it('bad parameters, unknown messages and unknown routes use the one error shape', async () => {
    const { token } = tokens.create({ role: 'auditor', name: 'a' });
    const cases: Array<[string, number]> = [
      ['/api/search?limit=0', 400], ['/api/search?limit=abc', 400], ['/api/search?cursor=xyz', 400],
      ['/api/search?unknown=1', 400], ['/api/messages/abc', 400], ['/api/messages/123', 404],
      ['/api/messages/123/raw', 404], ['/api/nothing-here', 404],
    ];
    for (const [url, status] of cases) {
      const res = await app.inject({ url, headers: bearer(token) });
      expect(res.statusCode, url).toBe(status);
      expect(res.json(), url).toEqual(errorShape);
    }
  });

  it('an empty archive searches to an empty result', async () => {
    const { token } = tokens.create({ role: 'auditor', name: 'a' });
    const res = await app.inject({ url: '/api/search?q=', headers: bearer(token) });
    expect(res.json()).toEqual({ total: 0, items: [], next_cursor: null });
  });
});
