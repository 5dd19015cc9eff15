import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEntry, AuditInput } from '../../src/audit/entries.js';
import { openAuditTrail } from '../../src/audit/trail.js';
import { openDatabase } from '../../src/db/database.js';
import { listSegments } from '../../src/ledger/segments.js';
import { runCli } from '../helpers/cli.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

/** A data dir whose trail holds `inputs`, written the way the server writes them. */
async function archiveWith(inputs: AuditInput[]): Promise<string> {
  const data = tempDir();
  const db = openDatabase({ file: path.join(data, 'spindle.db') });
  const trail = await openAuditTrail({ dir: path.join(data, 'audit'), db, log: silentLog() });
  for (const input of inputs) await trail.record(input);
  await trail.close();
  db.close();
  return data;
}

const entry = (actor: string, action: AuditInput['action'], target: string | null): AuditInput => ({
  actor, role: 'auditor', source: '192.0.2.7', action, target, outcome: 'ok', details: action === 'search' ? { query: 'invoice', hits: 3 } : {},
});
const parseLines = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEntry);

describe('spindle audit', () => {
  it('prints entries newest first as JSON lines or a table, with filters and paging', async () => {
    const data = await archiveWith([
      entry('alice', 'search', null), entry('alice', 'message.view', '101'), entry('bob', 'message.raw', '101'), entry('alice', 'message.view', '102'),
    ]);
    const d = ['--data-dir', data];
    const all = await runCli(['audit', '--json', ...d]);
    expect(all.code).toBe(0);
    expect(parseLines(all.stdout).map((e) => e.seq)).toEqual([4, 3, 2, 1]);
    expect(parseLines(all.stdout)[3]).toMatchObject({ actor: 'alice', action: 'search', details: { query: 'invoice', hits: 3 } });

    const views = await runCli(['audit', '--json', '--actor', 'alice', '--action', 'message.view', '--limit', '1', ...d]);
    expect(parseLines(views.stdout).map((e) => e.target)).toEqual(['102']);
    expect(views.stderr).toMatch(/more: --cursor 4/);

    const table = await runCli(['audit', '--target', '101', ...d]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^SEQ\s+TIME \(UTC\)\s+ACTOR/);
    expect(table.stdout).toMatch(/^3\s+.*bob \(auditor\)\s+192\.0\.2\.7\s+message\.raw\s+101\s+ok/m);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);

    const bad = await runCli(['audit', '--since', 'last tuesday', ...d]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^spindle: --since must be an ISO date/);
  }, 60_000);

  it('rebuild refills the audit table; verify reports the audit chain and fails when it is edited', async () => {
    const data = await archiveWith([entry('alice', 'search', null), entry('carol', 'message.view', '7'), entry('alice', 'message.raw', '7')]);
    const d = ['--data-dir', data];
    const rebuild = await runCli(['rebuild', ...d]);
    expect(rebuild.code, rebuild.stderr).toBe(0);
    expect(rebuild.stdout).toMatch(/3 audit entries indexed/);
    const db = openDatabase({ file: path.join(data, 'spindle.db'), readonly: true });
    expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(3);
    db.close();
    expect(parseLines((await runCli(['audit', '--json', '--actor', 'carol', ...d])).stdout)).toEqual([expect.objectContaining({ seq: 2, target: '7' })]);

    const ok = await runCli(['verify', '--json', ...d]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, audit: { entries: 3, ok: true } });

    const seg = listSegments(path.join(data, 'audit'))[0]!.file;
    fs.writeFileSync(seg, fs.readFileSync(seg, 'utf8').replace('"actor":"carol"', '"actor":"nobody"'));
    const broken = await runCli(['verify', ...d]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^Audit:\s+2 entries, BROKEN at .*0001\.jsonl:2 \(entry 2\): entry 2 was changed/m);
    expect(broken.stdout).toContain('FAILED');
  }, 60_000);
});
