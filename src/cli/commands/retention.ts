import os from 'node:os';
import type { Config } from '../../config/settings.js';
import type { RuleInfo } from '../../db/retention-reader.js';
import { createLogger } from '../../log/logger.js';
import { parseAsOf, RetentionError, type HoldInput, type RuleInput } from '../../retention/inputs.js';
import { formatPeriod } from '../../retention/period.js';
import type { PurgeStep } from '../../retention/purge.js';
import { createRetentionQueries, purgeAuditDetails, type Explanation, type HoldView, type PurgeReport, type RetentionQueries } from '../../retention/queries.js';
import type { RetentionService } from '../../retention/service.js';
import { LockedError } from '../../runtime/lock.js';
import { withOfflineRetention } from '../../runtime/offline.js';
import { recordCliAudit } from '../cli-audit.js';
import { openArchiveDb } from '../context.js';
import { CliError } from '../errors.js';

/** Who the ledger names for a change made here; the audit trail says `cli:<OS user>` too. */
const ACTOR = (): string => `cli:${os.userInfo().username}`;

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

const fmtBytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`;

/** Read-only commands: they run beside a live server. */
function withQueries<T>(config: Config, fn: (q: RetentionQueries) => T | Promise<T>): Promise<T> {
  const db = openArchiveDb(config);
  return Promise.resolve()
    .then(() => fn(createRetentionQueries(db, () => new Date())))
    .finally(() => db.close());
}

/**
 * Commands that write the ledger: only with no server running (the server is the ledger's one
 * writer; through it, use the API). Test-only: SPINDLE_TEST_KILL_PURGE_AT=<step> kills this
 * process (SIGKILL) at that step of the first purge batch, to prove a purge survives it.
 */
async function withWriter<T>(config: Config, fn: (s: RetentionService) => Promise<T>): Promise<T> {
  const log = createLogger({ level: 'warn', format: config.logFormat });
  const killAt = process.env.SPINDLE_TEST_KILL_PURGE_AT as PurgeStep | undefined;
  const onStep = killAt ? (step: PurgeStep) => {
    if (step === killAt) process.kill(process.pid, 'SIGKILL');
  } : undefined;
  try {
    return await withOfflineRetention(config, log, fn, onStep ? { onStep } : {});
  } catch (err) {
    if (err instanceof LockedError) {
      throw new CliError(`a Spindle server (pid ${err.pid}) is running on this data directory and is the ledger's only writer: ` +
        'make this change through its API (see docs/retention.md), or stop the server first');
    }
    if (err instanceof RetentionError) throw new CliError(err.message, err.code.startsWith('bad_') ? 2 : 1);
    throw err;
  }
}

function asOfOption(value: string | undefined, dryRun: boolean): Date {
  try {
    return parseAsOf(value, new Date(), { realPurge: !dryRun });
  } catch (err) {
    if (err instanceof RetentionError) throw new CliError(err.message.replace(/^as-of/, '--as-of'), 2);
    throw err;
  }
}

const ruleLine = (r: RuleInfo): string => {
  const what = r.id === 'default' ? 'all other mail' : [r.match.participants.join(', '), r.match.query ? `query ${JSON.stringify(r.match.query)}` : ''].filter(Boolean).join('; ');
  return `${r.id.padEnd(12)} ${formatPeriod(r.period).padEnd(8)} from ${r.from.padEnd(8)} ${r.name}  [${what}]`;
};

export function retentionList(config: Config, opts: { json?: boolean }): Promise<void> {
  return withQueries(config, (q) => {
    const rules = q.rules();
    if (opts.json) return out(JSON.stringify(rules, null, 2));
    out('Rules (when several match a message, the longest period wins; the default applies when none does):');
    for (const r of rules) out(`  ${ruleLine(r)}`);
  });
}

export async function retentionAdd(config: Config, opts: { period?: string; participant?: string[]; query?: string; from?: string; name?: string; default?: boolean }): Promise<void> {
  if (!opts.period) throw new CliError('--period is required (e.g. 90d, 18m, 7y, forever)', 2);
  if (opts.from !== undefined && opts.from !== 'arrival' && opts.from !== 'date') throw new CliError('--from must be arrival or date', 2);
  const input: RuleInput = {
    period: opts.period, participants: opts.participant ?? [], query: opts.query ?? null, isDefault: opts.default === true,
    ...(opts.from ? { from: opts.from as 'arrival' | 'date' } : {}), ...(opts.name ? { name: opts.name } : {}),
  };
  const rule = await withWriter(config, (s) => s.addRule(input, ACTOR()));
  await recordCliAudit(config, {
    action: 'retention.change', target: rule.id,
    details: { change: 'add', name: rule.name, participants: rule.match.participants.join(','), query: rule.match.query, period: formatPeriod(rule.period), from: rule.from, seq: rule.seq },
  });
  out(`Added rule ${ruleLine(rule)} (ledger seq ${rule.seq}).`);
}

export async function retentionRemove(config: Config, id: string): Promise<void> {
  const rule = await withWriter(config, (s) => s.removeRule(id, ACTOR()));
  await recordCliAudit(config, { action: 'retention.change', target: rule.id, details: { change: 'remove', name: rule.name, period: formatPeriod(rule.period) } });
  out(id === 'default' ? 'Removed the default: mail no rule matches is kept forever again.' : `Removed rule ${id}.`);
}

function explainText(e: Explanation): string {
  if (e.status === 'purged') {
    const t = e.tombstone!;
    return `Message ${e.id} was purged ${t.purged_at} (run ${t.run}, ledger seq ${t.seq}) under rule ${t.rule}; it expired ${t.expired}. Message-ID ${t.message_id ?? '(none)'}.`;
  }
  const lines = [
    `Message ${e.id}  Message-ID ${e.message?.message_id ?? '(none)'}  arrived ${e.message?.arrived}  Date ${e.message?.date ?? '(none)'}`,
    e.default_applies ? 'No rule matches; the default applies:' : 'Matching rules (the longest governs):',
    ...e.rules.map((r) => `  ${r.governing ? '*' : ' '} ${r.id.padEnd(12)} ${r.period.padEnd(8)} from ${r.from.padEnd(8)} expires ${r.expires ?? 'never'}  ${r.name}`),
    `As of ${e.as_of}: ${e.status === 'kept' ? `kept until ${e.expires ?? 'forever'}` : e.status === 'held' ? `expired ${e.expires}, but held` : `expired ${e.expires}; the next purge removes it`}`,
    ...e.holds.map((h) => `  held by ${h.id} (${h.case})`),
  ];
  return lines.join('\n');
}

export function retentionExplain(config: Config, id: string, opts: { asOf?: string; json?: boolean }): Promise<void> {
  if (!/^\d{1,16}$/.test(id)) throw new CliError(`message id must be a number, got ${JSON.stringify(id)}`, 2);
  const asOf = asOfOption(opts.asOf, true);
  return withQueries(config, (q) => {
    const e = q.explain(Number(id), asOf);
    if (!e) throw new CliError(`no message ${id}`);
    out(opts.json ? JSON.stringify(e, null, 2) : explainText(e));
  });
}

function reportText(r: PurgeReport): string {
  const head = r.dry_run
    ? `Dry run as of ${r.as_of}: ${r.messages} messages (${fmtBytes(r.bytes)} original, ${fmtBytes(r.stored_bytes)} on disk) would be purged.`
    : `Purge ${r.run} as of ${r.as_of}: ${r.messages} messages purged (${fmtBytes(r.stored_bytes)} on disk freed)` +
      `${r.skipped ? `, ${r.skipped} left for the next run (a duplicate arrived meanwhile)` : ''}${r.complete ? '' : '; STOPPED before the end, run it again'}.`;
  return [
    head,
    ...r.by_rule.map((t) => `  ${t.rule.padEnd(12)} ${String(t.messages).padStart(8)} messages  ${fmtBytes(t.bytes).padStart(10)}  ${t.name}`),
    ...(r.blobs ? [`Blobs: ${r.blobs.deleted} deleted, ${r.blobs.kept} kept (new mail needs them), ${r.blobs.pending} pending`] : []),
    r.held.messages ? `Held: ${r.held.messages} expired messages kept by legal holds${r.held.messages > r.held.items.length ? ` (first ${r.held.items.length} listed)` : ''}:` : 'Held: none.',
    ...r.held.items.map((h) => `  ${String(h.id).padEnd(17)} ${h.message_id ?? '(no Message-ID)'}  rule ${h.rule}, expired ${h.expired}; holds ${h.holds.join(', ')}`),
  ].join('\n');
}

export async function retentionRun(config: Config, opts: { dryRun?: boolean; asOf?: string; json?: boolean }): Promise<void> {
  const dryRun = opts.dryRun === true;
  const asOf = asOfOption(opts.asOf, dryRun);
  const report = dryRun ? await withQueries(config, (q) => q.plan(asOf)) : await withWriter(config, (s) => s.run({ asOf, actor: ACTOR() }));
  await recordCliAudit(config, { action: 'retention.run', target: report.run, details: purgeAuditDetails(report) });
  out(opts.json ? JSON.stringify(report, null, 2) : reportText(report));
}

const holdLine = (h: HoldView): string => {
  const sel = [h.match.participants.join(', '), h.match.query ? `query ${JSON.stringify(h.match.query)}` : '',
    h.match.since || h.match.until ? `dated ${h.match.since ?? '…'} to ${h.match.until ?? '…'}` : ''].filter(Boolean).join('; ') || 'all mail';
  const state = h.released ? `RELEASED ${h.released.at} by ${h.released.by}: ${h.released.reason}` : `${h.messages} messages`;
  return `${h.id.padEnd(14)} ${JSON.stringify(h.case)} placed ${h.placed_at} by ${h.placed_by}  [${sel}]  ${state}\n${''.padEnd(15)}reason: ${h.reason}`;
};

export function holdList(config: Config, opts: { all?: boolean; json?: boolean }): Promise<void> {
  return withQueries(config, (q) => {
    const holds = q.holds({ active: !opts.all });
    if (opts.json) return out(JSON.stringify(holds, null, 2));
    if (holds.length === 0) return out(opts.all ? 'No holds.' : 'No active holds (--all lists released ones too).');
    for (const h of holds) out(holdLine(h));
  });
}

export async function holdAdd(config: Config, opts: { case?: string; reason?: string; participant?: string[]; query?: string; since?: string; until?: string }): Promise<void> {
  if (!opts.case || !opts.reason) throw new CliError('--case and --reason are required', 2);
  const input: HoldInput = {
    case: opts.case, reason: opts.reason, participants: opts.participant ?? [], query: opts.query ?? null, since: opts.since ?? null, until: opts.until ?? null,
  };
  const hold = await withWriter(config, (s) => s.placeHold(input, ACTOR()));
  await recordCliAudit(config, {
    action: 'hold.change', target: hold.id,
    details: { change: 'place', case: hold.case, reason: hold.reason, participants: hold.match.participants.join(','), query: hold.match.query, since: hold.match.since, until: hold.match.until, messages: hold.messages, seq: hold.seq },
  });
  out(`Placed hold ${holdLine(hold)}`);
}

export async function holdRelease(config: Config, id: string, opts: { reason?: string }): Promise<void> {
  if (!opts.reason) throw new CliError('--reason is required: say why the hold ends', 2);
  const reason = opts.reason;
  const hold = await withWriter(config, (s) => s.releaseHold(id, reason, ACTOR()));
  await recordCliAudit(config, { action: 'hold.change', target: hold.id, details: { change: 'release', case: hold.case, reason, seq: hold.released?.seq ?? null } });
  out(`Released hold ${hold.id} (${hold.case}).`);
}
