/**
 * `spindle retention …` and `spindle hold …`: the whole cycle with no server running (the command
 * writes the ledger itself), and what happens beside a live server (reading works; changing is
 * refused with a clear message, because the server is the ledger's one writer).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import type { TestArchive } from '../helpers/archive.js';
import { ARCHIVE_DOMAIN, deliver, idsByMessageId, ledgerRecords, mail, startRetentionArchive } from './fixture.js';

const env = { SPINDLE_ARCHIVE_ADDRESSES: `@${ARCHIVE_DOMAIN}`, SPINDLE_LOG_LEVEL: 'warn' };
const OLD = 'Thu, 01 Jan 2015 12:00:00 +0000';

async function seed(a: TestArchive): Promise<Record<string, number>> {
  await deliver(a, 'x@old.example', ['bob@example.com'], mail({ from: 'x@old.example', to: ['bob@example.com'], subject: 'old to bob', date: OLD, id: 'oldbob@x' }));
  await deliver(a, 'x@old.example', ['carol@example.com'], mail({ from: 'x@old.example', to: ['carol@example.com'], subject: 'old to carol', date: OLD, id: 'oldcarol@x' }));
  await deliver(a, 'alice@example.com', ['bob@example.com'], mail({ from: 'alice@example.com', to: ['bob@example.com'], subject: 'new', id: 'new@x' }));
  await a.indexer.idle();
  return idsByMessageId(a);
}

describe('spindle retention / hold', () => {
  it('rules, holds, explain, dry run and purge, with no server running; every change ledgered and audited', async () => {
    const a = await startRetentionArchive();
    const dir = a.config.dataDir;
    const ids = await seed(a);
    await a.close();
    const cli = (...args: string[]) => runCli([...args, '--data-dir', dir], env);

    const added = await cli('retention', 'add', '--participant', 'old.example', '--period', '1y', '--from', 'date', '--name', 'old mail');
    expect(added.code, added.stderr).toBe(0);
    const ruleId = /Added rule (r-[0-9a-f]+)/.exec(added.stdout)![1]!;
    expect((await cli('retention', 'add', '--default', '--period', '7y')).code).toBe(0);
    const list = await cli('retention', 'list');
    expect(list.stdout).toMatch(/default\s+7y\s+from arrival/);
    expect(list.stdout).toContain(`${ruleId}`);

    const hold = await cli('hold', 'add', '--case', 'Bob matter', '--reason', 'court order', '--participant', 'bob@example.com');
    expect(hold.code, hold.stderr).toBe(0);
    const holdId = /Placed hold (h-[0-9a-f]+)/.exec(hold.stdout)![1]!;
    expect((await cli('hold', 'list')).stdout).toMatch(new RegExp(`${holdId}.*"Bob matter".*2 messages`));
    const explained = await cli('retention', 'explain', String(ids.oldbob));
    expect(explained.stdout).toContain(`held by ${holdId} (Bob matter)`);
    expect(explained.stdout).toMatch(/\* r-[0-9a-f]+\s+1y\s+from date\s+expires 2016-01-01/);

    const dry = await cli('retention', 'run', '--dry-run');
    expect(dry.stdout).toMatch(/Dry run as of .*: 1 messages/);
    expect(dry.stdout).toMatch(/Held: 1 expired messages kept by legal holds/);
    expect(dry.stdout).toContain('oldbob@x');

    expect((await cli('hold', 'release', holdId, '--reason', 'order lifted')).code).toBe(0);
    const run = await cli('retention', 'run', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ dry_run: false, messages: 2, blobs: { deleted: 2 } });
    const gone = await cli('retention', 'explain', String(ids.oldcarol));
    expect(gone.stdout).toMatch(new RegExp(`Message ${ids.oldcarol} was purged .* under rule ${ruleId}`));
    expect((await cli('retention', 'remove', ruleId)).code).toBe(0);

    const kinds = ledgerRecords(dir).flatMap((r) => (r.type === 'delivery' ? [] : [`${r.type}:${'action' in r ? r.action : 'run'}`]));
    expect(kinds).toEqual(['retention-rule:add', 'retention-rule:add', 'hold:place', 'hold:release', 'purge:run', 'retention-rule:remove']);
    const audit = await cli('audit', '--json', '--limit', '20');
    // Newest first; the seeding's own searches come before (below) these.
    const actions = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; actor: string; details: Record<string, unknown> }).slice(0, 7);
    expect(actions.map((e) => e.action)).toEqual(['retention.change', 'retention.run', 'hold.change', 'retention.run', 'hold.change', 'retention.change', 'retention.change']);
    expect(actions.every((e) => e.actor.startsWith('cli:'))).toBe(true);
    expect(actions[1]!.details).toMatchObject({ dry_run: false, messages: 2 });
  }, 120_000);

  it('beside a live server: reading works, changing is refused with a clear message; bad input exits 2', async () => {
    const a = await startRetentionArchive();
    try {
      const ids = await seed(a);
      const dir = a.config.dataDir;
      const cli = (...args: string[]) => runCli([...args, '--data-dir', dir], env);
      const refused = await cli('retention', 'add', '--participant', 'old.example', '--period', '1y');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^spindle: a Spindle server \(pid \d+\) is running on this data directory and is the ledger's only writer: make this change through its API/);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect((await cli('hold', 'add', '--case', 'c', '--reason', 'r')).code).toBe(1);
      expect((await cli('retention', 'run')).code).toBe(1);
      const dry = await cli('retention', 'run', '--dry-run', '--as-of', '2099-01-01');
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/Dry run as of 2099-01-01T00:00:00.000Z: 0 messages/);
      expect((await cli('retention', 'explain', String(ids.new))).stdout).toMatch(/No rule matches; the default applies/);
      const bad = await Promise.all([
        cli('retention', 'run', '--as-of', '2999-01-01'),
        cli('retention', 'run', '--dry-run', '--as-of', '2024-13-01'),
        cli('retention', 'explain', 'abc'),
      ]);
      for (const r of bad) {
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      expect(ledgerRecords(dir).filter((r) => r.type !== 'delivery')).toEqual([]);
    } finally {
      await a.close();
    }
  }, 120_000);
});
