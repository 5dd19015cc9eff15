import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditInput } from '../../src/audit/entries.js';
import { AuditIndexAheadError, openAuditTrail, type AuditTrail } from '../../src/audit/trail.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { listSegments } from '../../src/ledger/segments.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

const view = (i: number, over: Partial<AuditInput> = {}): AuditInput => ({
  actor: 'officer', role: 'auditor', source: '10.0.0.1', action: 'message.view', target: String(i), outcome: 'ok', ...over,
});

const opened: Array<{ trail: AuditTrail; db: Db }> = [];
async function open(dataDir: string, opts: { now?: () => Date; segmentBytes?: number } = {}) {
  const db = openDatabase({ file: path.join(dataDir, 'spindle.db') });
  const trail = await openAuditTrail({ dir: path.join(dataDir, 'audit'), db, log: silentLog(), ...opts }).catch((err: unknown) => {
    db.close();
    throw err;
  });
  opened.push({ trail, db });
  return { trail, db, dir: path.join(dataDir, 'audit') };
}
/** Closes the newest trail and its database early, as a restart would. */
async function closeLast(): Promise<void> {
  const last = opened.pop()!;
  await last.trail.close();
  last.db.close();
}
afterEach(async () => {
  for (const { trail, db } of opened.splice(0)) {
    await trail.close();
    db.close();
  }
});

describe('audit trail chain', () => {
  it('appends entries with the documented fields, and continues the chain after reopen', async () => {
    const data = tempDir();
    const { trail, dir } = await open(data);
    const e = await trail.record(view(7, { details: { token_id: 'abc' } }));
    expect(e).toEqual({
      seq: 1, ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), prev: '0'.repeat(64), actor: 'officer', role: 'auditor',
      source: '10.0.0.1', action: 'message.view', target: '7', outcome: 'ok', details: { token_id: 'abc' },
    });
    const line = fs.readFileSync(listSegments(dir)[0]!.file, 'utf8').trim();
    expect(Object.keys(JSON.parse(line) as object)).toEqual(['seq', 'ts', 'prev', 'actor', 'role', 'source', 'action', 'target', 'outcome', 'details']);
    await trail.record(view(8));
    await closeLast();

    const again = await open(data);
    expect(again.trail.lastSeq()).toBe(2);
    expect((await again.trail.record(view(9))).seq).toBe(3);
    expect(await again.trail.verify()).toEqual({ entries: 3, ok: true });
  });

  it('group-commits 200 concurrent records into fewer writes and keeps the chain valid', async () => {
    let clock = Date.parse('2024-03-05T10:00:00Z');
    // now() is read once per committed batch, so distinct timestamps count the batches.
    const { trail, dir } = await open(tempDir(), { now: () => new Date(clock++) });
    const entries = await Promise.all(Array.from({ length: 200 }, (_, i) => trail.record(view(i))));
    expect(entries.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const batches = new Set(entries.map((e) => e.ts)).size;
    expect(batches).toBeLessThan(200);
    expect(await verifyAuditChain(dir)).toEqual({ entries: 200, ok: true });
    const page = await trail.query({ limit: 500 });
    expect(page.items).toHaveLength(200);
  });

  it('moves a torn last line aside on reopen and continues the chain', async () => {
    const data = tempDir();
    const { trail, dir } = await open(data);
    for (let i = 0; i < 3; i++) await trail.record(view(i));
    await closeLast();
    fs.appendFileSync(listSegments(dir)[0]!.file, '{"seq":4,"ts":"2024-03-05T1');
    const again = await open(data);
    expect(again.trail.lastSeq()).toBe(3);
    expect((await again.trail.record(view(3))).seq).toBe(4);
    expect(fs.readdirSync(dir).some((n) => n.startsWith('torn-'))).toBe(true);
    expect(await verifyAuditChain(dir)).toEqual({ entries: 4, ok: true });
  });

  it('rotates segments and verifies across them', async () => {
    const { trail, dir } = await open(tempDir(), { segmentBytes: 1500 });
    for (let i = 0; i < 30; i++) await trail.record(view(i));
    expect(listSegments(dir).length).toBeGreaterThan(2);
    expect(await verifyAuditChain(dir)).toEqual({ entries: 30, ok: true });
    expect((await trail.query({ target: '3' })).items.map((e) => e.seq)).toEqual([4]);
  });

  it('refuses unknown actions and keeps secrets and content out of details', async () => {
    const { trail } = await open(tempDir());
    await expect(trail.record(view(1, { action: 'peek' as never }))).rejects.toThrow(/unknown audit action/);
    const e = await trail.record(view(1, { details: { password: 'hunter2', token: 'spx_x', body: 'mail text', query: 'q'.repeat(5000), hits: 3 } }));
    expect(e.details).toEqual({ query: 'q'.repeat(2000), hits: 3 });
  });
});

describe('audit index', () => {
  async function seeded() {
    let clock = Date.parse('2024-03-01T00:00:00Z');
    const t = await open(tempDir(), { now: () => new Date((clock += 3_600_000)) });
    // Sequential, so each entry gets its own hour: 01:00, 02:00, … on 1 March.
    for (let i = 1; i <= 30; i++) {
      await t.trail.record(view(i, {
        actor: i % 3 === 0 ? 'alice' : 'bob', action: i % 2 === 0 ? 'search' : 'message.view', target: i % 2 === 0 ? null : String(i),
      }));
    }
    return t;
  }

  it('filters by actor, action, target and time, newest first', async () => {
    const { trail } = await seeded();
    const alice = await trail.query({ actor: 'alice' });
    expect(alice.items.map((e) => e.seq)).toEqual([30, 27, 24, 21, 18, 15, 12, 9, 6, 3]);
    expect((await trail.query({ actor: 'alice', action: 'search' })).items.map((e) => e.seq)).toEqual([30, 24, 18, 12, 6]);
    expect((await trail.query({ target: '9' })).items.map((e) => e.seq)).toEqual([9]);
    // since is inclusive, until exclusive; a date alone is 00:00 UTC.
    expect((await trail.query({ since: '2024-03-01T05:00:00Z', until: '2024-03-01T08:00:00Z' })).items.map((e) => e.seq)).toEqual([7, 6, 5]);
    expect((await trail.query({ since: '2024-03-02' })).items.map((e) => e.seq)).toEqual([30, 29, 28, 27, 26, 25, 24]);
    expect((await trail.query({ until: '2024-03-01T03:00' })).items.map((e) => e.seq)).toEqual([2, 1]);
    expect((await trail.query({ actor: "alice' OR 1=1 --" })).items).toEqual([]);
  });

  it('pages by seq with a cursor until the end', async () => {
    const { trail } = await seeded();
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await trail.query({ actor: 'bob', limit: 7, cursor });
      seen.push(...page.items.map((e) => e.seq));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => 30 - i).filter((s) => s % 3 !== 0));
    expect((await trail.query({})).items).toHaveLength(30);
    expect((await trail.query({ limit: 10_000 })).items).toHaveLength(30);
  });

  it('rejects bad filters with a code', async () => {
    const { trail } = await seeded();
    await expect(trail.query({ since: '2024-02-31' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(trail.query({ until: 'yesterday' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(trail.query({ action: 'peek' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(trail.query({ cursor: 'abc' })).rejects.toMatchObject({ code: 'bad_cursor' });
  });

  it('catches up from the chain on open after the table lost entries, and refuses a cut trail', async () => {
    const data = tempDir();
    const { trail, db, dir } = await open(data);
    for (let i = 0; i < 5; i++) await trail.record(view(i));
    db.exec("DELETE FROM audit WHERE seq > 2; UPDATE meta SET value = '2' WHERE key = 'audit_indexed_seq'");
    await closeLast();

    const again = await open(data);
    expect((await again.trail.query({})).items.map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
    await closeLast();

    // The index knows 5 entries; a trail cut back to 3 must not be silently continued.
    const seg = listSegments(dir)[0]!.file;
    fs.writeFileSync(seg, fs.readFileSync(seg, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
    await expect(open(data)).rejects.toBeInstanceOf(AuditIndexAheadError);
  });
});
