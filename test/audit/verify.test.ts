import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openAuditTrail } from '../../src/audit/trail.js';
import { verifyAuditChain } from '../../src/audit/verify.js';
import { openDatabase } from '../../src/db/database.js';
import { verifyArchive } from '../../src/integrity/verify.js';
import { listSegments } from '../../src/ledger/segments.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

/** A data dir with a five-entry trail (actors user1..user5); returns the segment's lines. */
async function fiveEntries(): Promise<{ data: string; dir: string; seg: string; lines: string[] }> {
  const data = tempDir();
  const dir = path.join(data, 'audit');
  const db = openDatabase({ file: path.join(data, 'spindle.db') });
  const trail = await openAuditTrail({ dir, db, log: silentLog() });
  for (let i = 1; i <= 5; i++) {
    await trail.record({ actor: `user${i}`, role: 'auditor', source: '10.0.0.1', action: 'search', outcome: 'ok', details: { query: `q${i}`, hits: i } });
  }
  await trail.close();
  db.close();
  const seg = listSegments(dir)[0]!.file;
  return { data, dir, seg, lines: fs.readFileSync(seg, 'utf8').trimEnd().split('\n') };
}

const write = (file: string, lines: string[]) => fs.writeFileSync(file, lines.join('\n') + '\n');

describe('verifyAuditChain', () => {
  it('passes an untouched trail, and a missing directory is an empty trail', async () => {
    const { dir } = await fiveEntries();
    expect(await verifyAuditChain(dir)).toEqual({ entries: 5, ok: true });
    expect(await verifyAuditChain(path.join(tempDir(), 'audit'))).toEqual({ entries: 0, ok: true });
  });

  it('names the entry whose actor was edited', async () => {
    const { dir, seg, lines } = await fiveEntries();
    write(seg, lines.map((l, i) => (i === 2 ? l.replace('"actor":"user3"', '"actor":"someone"') : l)));
    const r = await verifyAuditChain(dir);
    expect(r).toMatchObject({ ok: false, entries: 3, firstBroken: { seq: 3, file: seg, line: 3 } });
    expect(r.firstBroken!.reason).toMatch(/entry 3 was changed/);
  });

  it('names the first entry when it no longer starts the chain', async () => {
    const { dir, seg, lines } = await fiveEntries();
    write(seg, [lines[0]!.replace(/"prev":"0+"/, `"prev":"${'1'.repeat(64)}"`), ...lines.slice(1)]);
    expect(await verifyAuditChain(dir)).toMatchObject({ ok: false, firstBroken: { seq: 1, line: 1 } });
  });

  it('finds a line deleted from the middle', async () => {
    const { dir, seg, lines } = await fiveEntries();
    write(seg, [...lines.slice(0, 2), ...lines.slice(3)]);
    const r = await verifyAuditChain(dir);
    expect(r).toMatchObject({ ok: false, entries: 2, firstBroken: { seq: 4, line: 3 } });
    expect(r.firstBroken!.reason).toMatch(/expected entry 3, found 4/);
  });

  it('finds reordered entries and a line that is not JSON', async () => {
    const { dir, seg, lines } = await fiveEntries();
    write(seg, [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
    expect(await verifyAuditChain(dir)).toMatchObject({ ok: false, firstBroken: { seq: 3, line: 2 } });
    write(seg, [...lines.slice(0, 3), 'garbage', ...lines.slice(4)]);
    expect(await verifyAuditChain(dir)).toMatchObject({ ok: false, firstBroken: { seq: null, line: 4 } });
  });

  it('finds entries cut from the end against the index position', async () => {
    const { dir, seg, lines } = await fiveEntries();
    write(seg, lines.slice(0, 3));
    expect(await verifyAuditChain(dir)).toEqual({ entries: 3, ok: true });
    const r = await verifyAuditChain(dir, { indexedSeq: 5 });
    expect(r).toMatchObject({ ok: false, firstBroken: { seq: 4, line: 4 } });
    expect(r.firstBroken!.reason).toMatch(/entries 4-5 are missing from the end/);
  });
});

describe('spindle verify covers the audit trail', () => {
  it('reports the audit chain and fails on a break or a cut, but not on a missing trail', async () => {
    const { data, seg, lines } = await fiveEntries();
    expect(await verifyArchive({ dataDir: data })).toMatchObject({ ok: true, audit: { entries: 5, ok: true } });
    write(seg, lines.map((l, i) => (i === 1 ? l.replace('"hits":2', '"hits":0') : l)));
    expect(await verifyArchive({ dataDir: data })).toMatchObject({ ok: false, audit: { ok: false, firstBroken: { seq: 2 } } });
    write(seg, lines.slice(0, 4));
    expect(await verifyArchive({ dataDir: data })).toMatchObject({ ok: false, audit: { ok: false, entries: 4, firstBroken: { seq: 5 } } });
    expect(await verifyArchive({ dataDir: tempDir() })).toMatchObject({ ok: true, audit: { entries: 0, ok: true } });
  });
});
