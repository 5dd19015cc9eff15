import type { AuditEntry } from '../../audit/entries.js';
import { AuditQueryError, MAX_LIMIT, type AuditQuery } from '../../audit/filters.js';
import { createAuditIndex } from '../../audit/index-db.js';
import type { Config } from '../../config/settings.js';
import { readLedgerTail } from '../../ledger/tail.js';
import { dataPaths } from '../../runtime/paths.js';
import { openArchiveDb } from '../context.js';
import { CliError } from '../errors.js';

export interface AuditCommandOptions {
  since?: string; until?: string; actor?: string; action?: string; target?: string; limit?: string; cursor?: string; json?: boolean;
}

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

function row(e: AuditEntry): string {
  const who = e.actor === null ? '(anonymous)' : `${e.actor}${e.role ? ` (${e.role})` : ''}`;
  const details = Object.keys(e.details).length ? JSON.stringify(e.details) : '';
  return `${String(e.seq).padEnd(8)} ${e.ts.slice(0, 19).replace('T', ' ')}  ${clip(who, 26)} ${clip(e.source ?? '-', 15)} ${clip(e.action, 18)} ${clip(e.target ?? '-', 18)} ${e.outcome.padEnd(7)} ${details}`;
}

/**
 * Prints the audit trail, newest first, from the database index. Read-only: it never appends
 * (the server is the trail's one writer), so reading from the command line is not itself
 * recorded; whoever can run it can read the data directory anyway.
 */
export async function auditCommand(config: Config, opts: AuditCommandOptions): Promise<void> {
  let limit: number | undefined;
  if (opts.limit !== undefined) {
    if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > MAX_LIMIT) throw new CliError(`--limit expects a number from 1 to ${MAX_LIMIT}`, 2);
    limit = Number(opts.limit);
  }
  const filters: AuditQuery = {
    actor: opts.actor, action: opts.action, target: opts.target, since: opts.since, until: opts.until, limit: limit ?? 50, cursor: opts.cursor,
  };
  const db = openArchiveDb(config);
  try {
    const index = createAuditIndex(db);
    let page;
    try {
      page = index.query(filters);
    } catch (err) {
      if (err instanceof AuditQueryError) throw new CliError(err.message.replace(/^(since|until|action|cursor)\b/, '--$1'), 2);
      throw err;
    }
    // Entries a stopped server committed but had not indexed yet are added on its next start.
    const behind = (await readLedgerTail(dataPaths(config.dataDir).audit)) - index.indexedSeq();
    if (behind > 0) process.stderr.write(`spindle: note: the ${behind} newest audit entries are not indexed yet (the server adds them when it starts)\n`);
    if (opts.json) {
      for (const e of page.items) out(JSON.stringify(e));
      if (page.next_cursor) process.stderr.write(`more: --cursor ${page.next_cursor}\n`);
      return;
    }
    if (page.items.length === 0) return out('No audit entries match.');
    out(`${'SEQ'.padEnd(8)} ${'TIME (UTC)'.padEnd(19)}  ${clip('ACTOR', 26)} ${clip('SOURCE', 15)} ${clip('ACTION', 18)} ${clip('TARGET', 18)} ${'OUTCOME'.padEnd(7)} DETAILS`);
    for (const e of page.items) out(row(e));
    if (page.next_cursor) out(`… more: add --cursor ${page.next_cursor}`);
  } finally {
    db.close();
  }
}
