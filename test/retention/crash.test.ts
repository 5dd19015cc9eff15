/**
 * kill -9 during a purge, at every step of it, then run again: the purge finishes, nothing is half
 * deleted, nothing that should stay is gone. The purge runs as `spindle retention run` in a child
 * process (no server: the command holds the data-directory lock and writes the ledger itself);
 * SPINDLE_TEST_KILL_PURGE_AT makes it SIGKILL itself at the given step.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { verifyArchive } from '../../src/integrity/verify.js';
import type { PurgeStep } from '../../src/retention/purge.js';
import { tempDir } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { blobFile, call, deliver, ledgerRecords, mail, startRetentionArchive, ARCHIVE_DOMAIN } from './fixture.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const OLD = 'Thu, 01 Jan 2015 12:00:00 +0000';
const env = { SPINDLE_ARCHIVE_ADDRESSES: `@${ARCHIVE_DOMAIN}`, SPINDLE_LOG_LEVEL: 'warn' };

interface Prepared {
  dir: string;
  keep: Map<string, string>;
  expired: Map<string, string>;
}

/** 5 messages to keep, 12 whose retention (1 year from their 2015 Date) has ended. */
async function prepare(): Promise<Prepared> {
  const dir = tempDir();
  const a = await startRetentionArchive(dir);
  const keep = new Map<string, string>();
  const expired = new Map<string, string>();
  try {
    for (let i = 0; i < 5; i++) {
      const raw = mail({ from: 'alice@example.com', to: ['bob@example.com'], subject: `keep ${i}`, id: `keep${i}@x`, body: `kept body ${i}` });
      await deliver(a, 'alice@example.com', ['bob@example.com'], raw);
      keep.set(sha(raw), raw);
    }
    for (let i = 0; i < 12; i++) {
      const raw = mail({ from: 'x@old.example', to: ['bob@example.com'], subject: `old ${i}`, date: OLD, id: `old${i}@x`, body: `old body ${i}` });
      await deliver(a, 'x@old.example', ['bob@example.com'], raw);
      expired.set(sha(raw), raw);
    }
    await a.indexer.idle();
    await a.retention.addRule({ participants: ['old.example'], period: '1y', from: 'date' }, 'test');
  } finally {
    await a.close();
  }
  return { dir, keep, expired };
}

const count = (dir: string, sql: string): number => {
  const db = openDatabase({ file: path.join(dir, 'spindle.db') });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
};
const present = (dir: string, shas: Iterable<string>) => [...shas].filter((s) => fs.existsSync(blobFile(dir, s))).length;

/** Everything that must hold once the purge has finished, however it got there. */
async function expectFinished(p: Prepared): Promise<void> {
  const { dir } = p;
  expect(count(dir, 'SELECT count(*) FROM messages')).toBe(p.keep.size);
  expect(count(dir, 'SELECT count(*) FROM tombstones')).toBe(p.expired.size);
  expect(count(dir, "SELECT count(*) FROM purge_blobs WHERE state = 'pending'")).toBe(0);
  expect(present(dir, p.expired.keys())).toBe(0);
  for (const [hash, raw] of p.keep) expect(zlib.gunzipSync(fs.readFileSync(blobFile(dir, hash))).toString('utf8')).toBe(raw);
  const v = await verifyArchive({ dataDir: dir });
  expect(v.ok).toBe(true);
  expect(v.blobs).toMatchObject({ missing: [], corrupt: [], orphaned: [], purgePending: [], purged: p.expired.size });
  expect(v.purges.messages).toBe(p.expired.size);
}

describe('kill -9 during a purge', () => {
  const steps: Array<[PurgeStep, string]> = [
    ['planned', 'before the purge record is written: nothing happened'],
    ['ledgered', 'after the purge record is durable, before the database applies it'],
    ['applied', 'after the database, before any blob is deleted'],
    ['deleting', 'after the first blob deletion'],
  ];
  for (const [step, what] of steps) {
    it(`${step}: ${what}; running again finishes the job`, async () => {
      const p = await prepare();
      const killed = await runCli(['retention', 'run', '--data-dir', p.dir], { ...env, SPINDLE_TEST_KILL_PURGE_AT: step });
      expect(killed.code, killed.stderr).toBe(-1); // SIGKILL: no exit code
      const purges = ledgerRecords(p.dir).filter((r) => r.type === 'purge');
      expect(purges).toHaveLength(step === 'planned' ? 0 : 1);
      if (step === 'applied') {
        // Decided and out of the database; the files wait: verify says so, and it is not a loss.
        expect(present(p.dir, p.expired.keys())).toBe(p.expired.size);
        const v = await verifyArchive({ dataDir: p.dir });
        expect(v.ok).toBe(true);
        expect(v.blobs.purgePending).toHaveLength(p.expired.size);
      }
      if (step === 'deleting') expect(present(p.dir, p.expired.keys())).toBe(p.expired.size - 1);
      for (const [hash] of p.keep) expect(fs.existsSync(blobFile(p.dir, hash))).toBe(true);

      const again = await runCli(['retention', 'run', '--data-dir', p.dir, '--json'], env);
      expect(again.code, again.stderr).toBe(0);
      const report = JSON.parse(again.stdout) as { messages: number };
      expect(report.messages).toBe(step === 'planned' ? p.expired.size : 0);
      await expectFinished(p);
    }, 60_000);
  }

  it('a server started after the crash finishes the pending deletions by itself', async () => {
    const p = await prepare();
    expect((await runCli(['retention', 'run', '--data-dir', p.dir], { ...env, SPINDLE_TEST_KILL_PURGE_AT: 'applied' })).code).toBe(-1);
    const a = await startRetentionArchive(p.dir, { SPINDLE_PURGE_TIME: '03:30' });
    try {
      for (let i = 0; i < 100; i++) {
        const runs = await call<{ pending_blob_deletions: number; next_scheduled_run: string | null }>(a, { url: '/api/retention/runs', role: 'admin' });
        expect(new Date(runs.body.next_scheduled_run!).getMinutes()).toBe(30);
        if (runs.body.pending_blob_deletions === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await call<{ total: number }>(a, { url: '/api/search?q=' })).body.total).toBe(p.keep.size);
    } finally {
      await a.close();
    }
    await expectFinished(p);
  }, 60_000);
});
