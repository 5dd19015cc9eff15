/**
 * Purges on a running archive: what goes (index, database, blobs), what stays (held mail, mail
 * whose retention has not ended), what is left behind (tombstones, ledger records, audit), and
 * that rebuild and verify agree afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { rebuildDatabase } from '../../src/integrity/rebuild.js';
import { verifyArchive } from '../../src/integrity/verify.js';
import type { Chained, PurgeBody } from '../../src/ledger/records.js';
import type { Explanation, PurgeReport } from '../../src/retention/service.js';
import { withOfflineRetention } from '../../src/runtime/offline.js';
import { silentLog, type TestArchive } from '../helpers/archive.js';
import { blobFile, call, deliver, idsByMessageId, ledgerRecords, mail, startRetentionArchive } from './fixture.js';

let archive: TestArchive | null = null;
afterEach(async () => {
  await archive?.close();
  archive = null;
});

const OLD = 'Thu, 01 Jan 2015 12:00:00 +0000';
const DAY = 86_400_000;

interface Fixture {
  a: TestArchive;
  ids: Record<string, number>;
  /** Blob sha256s of each message's deliveries. */
  blobs: Record<string, string[]>;
  rule: string;
  hold: string;
}

/**
 * keep (no rule: the default keeps it forever), exp1 (delivered twice, same bytes), exp2 (plus a
 * re-injected copy: same Message-ID and body, another blob), held (expired, but under a hold).
 * The rule "old.example, 1 year from the Date header" has expired exp1, exp2 and held.
 */
async function setUp(dataDir?: string): Promise<Fixture> {
  const a = await startRetentionArchive(dataDir);
  archive = a;
  const exp1 = mail({ from: 'x@old.example', to: ['carol@example.com'], subject: 'expired one', date: OLD, id: 'exp1@x', body: 'pineapple one' });
  const exp2 = mail({ from: 'x@old.example', to: ['carol@example.com'], subject: 'expired two', date: OLD, id: 'exp2@x', body: 'pineapple two' });
  await deliver(a, 'alice@example.com', ['bob@example.com'], mail({ from: 'alice@example.com', to: ['bob@example.com'], subject: 'keep me', id: 'keep@x', body: 'pineapple keep' }));
  await deliver(a, 'x@old.example', ['carol@example.com'], exp1);
  await deliver(a, 'x@old.example', ['carol@example.com'], exp1);
  await deliver(a, 'x@old.example', ['carol@example.com'], exp2);
  await deliver(a, 'x@old.example', ['carol@example.com'], `Received: from relay by mx; Thu, 1 Jan 2015 12:00:01 +0000\r\n${exp2}`);
  await deliver(a, 'y@old.example', ['dan@example.com'], mail({ from: 'y@old.example', to: ['dan@example.com'], subject: 'held', date: OLD, id: 'held@x', body: 'pineapple held' }));
  await a.indexer.idle();
  const ids = await idsByMessageId(a);
  const blobs: Record<string, string[]> = {};
  for (const [name, id] of Object.entries(ids)) {
    const m = await call<{ deliveries: Array<{ sha256: string }> }>(a, { url: `/api/messages/${id}` });
    blobs[name] = [...new Set(m.body.deliveries.map((d) => d.sha256))];
  }
  expect(blobs.exp1).toHaveLength(1);
  expect(blobs.exp2).toHaveLength(2);
  const rule = (await call<{ rule: { id: string } }>(a, { method: 'POST', url: '/api/retention/rules', role: 'admin', body: { participants: ['old.example'], period: '1y', from: 'date' } })).body.rule.id;
  const hold = (await call<{ hold: { id: string } }>(a, { method: 'POST', url: '/api/holds', role: 'auditor', body: { case: 'Dan', reason: 'subpoena', participants: ['dan@example.com'] } })).body.hold.id;
  return { a, ids, blobs, rule, hold };
}

const purge = async (a: TestArchive) => {
  const r = await call<PurgeReport>(a, { method: 'POST', url: '/api/retention/run', role: 'admin', body: { dry_run: false } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};
const searchIds = async (a: TestArchive, q = '') => (await call<{ items: Array<{ id: number }> }>(a, { url: `/api/search?q=${encodeURIComponent(q)}&limit=100` })).body.items.map((i) => i.id).sort();

describe('purge', () => {
  it('removes expired mail from index, database and disk; keeps held and unexpired mail; leaves tombstones and ledger records', async () => {
    const { a, ids, blobs, rule, hold } = await setUp();
    const dir = a.config.dataDir;
    const report = await purge(a);
    expect(report).toMatchObject({ dry_run: false, messages: 2, skipped: 0, complete: true, held: { messages: 1 }, blobs: { deleted: 3, kept: 0, pending: 0 } });
    expect(report.by_rule).toEqual([expect.objectContaining({ rule, messages: 2 })]);
    expect(await searchIds(a)).toEqual([ids.held, ids.keep].sort());
    expect(await searchIds(a, 'pineapple')).toEqual([ids.held, ids.keep].sort());
    expect((await call(a, { url: `/api/messages/${ids.exp1}` })).status).toBe(404);
    for (const sha of [...blobs.exp1!, ...blobs.exp2!]) expect(fs.existsSync(blobFile(dir, sha)), sha).toBe(false);
    for (const sha of [...blobs.keep!, ...blobs.held!]) expect(fs.existsSync(blobFile(dir, sha)), sha).toBe(true);

    // The tombstone: what it was, which rule ended it, which run removed it.
    const gone = (await call<Explanation>(a, { url: `/api/retention/explain/${ids.exp2}`, role: 'admin' })).body;
    expect(gone.status).toBe('purged');
    expect(gone.tombstone).toMatchObject({ id: ids.exp2, message_id: 'exp2@x', rule, run: report.run, expired: '2016-01-01T12:00:00.000Z', date: '2015-01-01T12:00:00.000Z' });
    expect(gone.tombstone!.deliveries).toHaveLength(2);

    // One purge record: intent, with every delivery and blob.
    const purges = ledgerRecords(dir).filter((r): r is Chained<PurgeBody> => r.type === 'purge');
    expect(purges).toHaveLength(1);
    expect(purges[0]).toMatchObject({ run: report.run, final: true, held: 1, actor: 'test-admin' });
    expect(purges[0]!.messages.map((m) => [m.messageId, m.deliveries.length, m.blobs.length])).toEqual([['exp1@x', 2, 1], ['exp2@x', 2, 2]]);

    // Run again: nothing more goes, and the run is on record too.
    const again = await purge(a);
    expect(again).toMatchObject({ messages: 0, held: { messages: 1 }, blobs: { deleted: 0 } });
    const runs = await call<{ runs: Array<{ run: string; status: string; messages: number; held: number }>; pending_blob_deletions: number }>(a, { url: '/api/retention/runs', role: 'admin' });
    expect(runs.body.runs.map((r) => [r.run, r.status, r.messages, r.held])).toEqual([[again.run, 'done', 0, 1], [report.run, 'done', 2, 1]]);
    expect(runs.body.pending_blob_deletions).toBe(0);
    const audit = await call<{ items: Array<{ target: string; details: Record<string, unknown> }> }>(a, { url: '/api/audit?action=retention.run', role: 'auditor' });
    expect(audit.body.items.map((i) => [i.target, i.details.messages])).toEqual([[again.run, 0], [report.run, 2]]);

    // Releasing the hold lets the next run take what it kept.
    await call(a, { method: 'POST', url: `/api/holds/${hold}/release`, role: 'auditor', body: { reason: 'closed' } });
    expect((await purge(a)).messages).toBe(1);
    expect(await searchIds(a)).toEqual([ids.keep]);

    // verify tells purged from lost.
    const v = await verifyArchive({ dataDir: dir });
    expect(v.ok).toBe(true);
    expect(v.blobs).toMatchObject({ missing: [], purged: 4, purgePending: [], orphaned: [] });
    expect(v.purges).toEqual({ records: 3, messages: 3 });
    fs.rmSync(blobFile(dir, blobs.keep![0]!));
    const lost = await verifyArchive({ dataDir: dir });
    expect(lost.ok).toBe(false);
    expect(lost.blobs.missing.map((m) => m.sha256)).toEqual(blobs.keep);
    expect(lost.blobs.purged).toBe(4);
    const api = await call<{ ok: boolean; blobs: { missing: unknown[]; purged: number } }>(a, { url: '/api/integrity?all=true', role: 'admin' });
    expect(api.body).toMatchObject({ ok: false, blobs: { purged: 4 } });
    expect(api.body.blobs.missing).toHaveLength(1);
  });

  it('rebuild after a purge gives the same archive: no purged mail, same search results, rules, holds, tombstones', async () => {
    const { a, ids } = await setUp();
    const dir = a.config.dataDir;
    await purge(a);
    const queries = ['', 'pineapple', 'from:old.example', 'to:carol@example.com', 'subject:expired'];
    const snapshot = async (x: TestArchive) => ({
      search: await Promise.all(queries.map(async (q) => (await call(x, { url: `/api/search?q=${encodeURIComponent(q)}&limit=100` })).body)),
      explain: await Promise.all(Object.values(ids).map(async (id) => {
        const e = (await call<Explanation>(x, { url: `/api/retention/explain/${id}`, role: 'admin' })).body;
        return { ...e, as_of: null };
      })),
      rules: (await call(x, { url: '/api/retention/rules', role: 'admin' })).body,
      holds: (await call(x, { url: '/api/holds', role: 'auditor' })).body,
      runs: (await call(x, { url: '/api/retention/runs', role: 'admin' })).body,
      stats: (await call(x, { url: '/api/stats', role: 'admin' })).body,
    });
    const before = await snapshot(a);
    expect((before.search[0] as { total: number }).total).toBe(2);
    await a.close();
    archive = null;
    const clean = await verifyArchive({ dataDir: dir });
    expect(clean.ok).toBe(true);
    expect(clean.links).toMatchObject({ broken: [], more: 0 });
    expect(clean.links!.checked).toBe(6);

    // A database that lost a row disagrees with the ledger: verify names the broken links.
    const db = openDatabase({ file: path.join(dir, 'spindle.db') });
    db.prepare('DELETE FROM deliveries WHERE message = ?').run(ids.keep);
    db.close();
    const broken = await verifyArchive({ dataDir: dir });
    expect(broken.ok).toBe(false);
    expect(broken.links!.broken.map((l) => l.kind).sort()).toEqual(['delivery-not-indexed', 'message-without-delivery']);
    fs.rmSync(path.join(dir, 'spindle.db'));
    for (const f of ['spindle.db-wal', 'spindle.db-shm']) fs.rmSync(path.join(dir, f), { force: true });
    await rebuildDatabase(a.config, silentLog());
    archive = await startRetentionArchive(dir);
    expect(await snapshot(archive)).toEqual(before);
    expect((await verifyArchive({ dataDir: dir })).ok).toBe(true);
  });

  it('time travel: arrival-based retention with an injected clock; mail that arrives again after its purge is new mail', async () => {
    const a = await startRetentionArchive();
    archive = a;
    const raw = mail({ from: 'news@letters.example', to: ['bob@example.com'], subject: 'weekly', id: 'weekly@x' });
    await deliver(a, 'news@letters.example', ['bob@example.com'], raw);
    await a.indexer.idle();
    await a.retention.addRule({ participants: ['letters.example'], period: '30d' }, 'test');
    const [first] = await searchIds(a);
    expect((await a.retention.run({ asOf: new Date(Date.now() + 29 * DAY), actor: 'test' })).messages).toBe(0);
    const later = await a.retention.run({ asOf: new Date(Date.now() + 31 * DAY), actor: 'test' });
    expect(later).toMatchObject({ messages: 1, blobs: { deleted: 1 } });
    expect(await searchIds(a)).toEqual([]);

    // The same bytes again: archived as a new message (a new id: a purged id is never reused).
    await deliver(a, 'news@letters.example', ['bob@example.com'], raw);
    await a.indexer.idle();
    const [second] = await searchIds(a);
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    const m = await call<{ sha256: string }>(a, { url: `/api/messages/${second}` });
    expect(fs.existsSync(blobFile(a.config.dataDir, m.body.sha256))).toBe(true);
    expect((await verifyArchive({ dataDir: a.config.dataDir })).blobs).toMatchObject({ missing: [], purged: 0, purgePending: [] });
    const dir = a.config.dataDir;
    await a.close();
    archive = null;

    // The same service offline, with a clock 40 days ahead: explain sees it expired.
    const explained = await withOfflineRetention(a.config, silentLog(), async (s) => s.explain(second!), { now: () => new Date(Date.now() + 40 * DAY) });
    expect(explained).toMatchObject({ status: 'expired' });
    expect(fs.existsSync(dir)).toBe(true);
  });
});
