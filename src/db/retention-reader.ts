import type { HoldSpec, RetentionRule } from '../ledger/records.js';
import type { Db } from './database.js';

export interface RuleInfo extends RetentionRule {
  created_by: string;
  created_at: string;
  /** Ledger seq of the record that set it. */
  seq: number;
}

export interface HoldInfo extends HoldSpec {
  reason: string;
  placed_by: string;
  placed_at: string;
  seq: number;
  released: { by: string; at: string; reason: string; seq: number } | null;
}

export interface PurgeRunInfo {
  run: string;
  as_of: string;
  actor: string;
  started_at: string;
  finished_at: string | null;
  batches: number;
  messages: number;
  skipped: number;
  held: number;
  bytes: number;
  stored_bytes: number;
  first_seq: number;
  last_seq: number;
}

export interface TombstoneInfo {
  id: number;
  sha256: string;
  message_id: string | null;
  date: string | null;
  arrived: string;
  expired: string;
  rule: string;
  purged_at: string;
  run: string;
  seq: number;
  deliveries: Array<{ seq: number; blob: string }>;
}

/** The default rule when none was ever set: keep forever, counted from arrival. */
export const FOREVER_DEFAULT: RetentionRule = { id: 'default', name: 'Default', match: { participants: [], query: null }, period: null, from: 'arrival' };

export interface RetentionReader {
  /** Every rule in force, the default first (the built-in forever default when none was set). */
  rules(): RuleInfo[];
  rule(id: string): RuleInfo | null;
  holds(opts?: { active?: boolean }): HoldInfo[];
  hold(id: string): HoldInfo | null;
  runs(limit?: number): PurgeRunInfo[];
  run(id: string): PurgeRunInfo | null;
  tombstone(id: number): TombstoneInfo | null;
  tombstonesOfRun(run: string): TombstoneInfo[];
  /** Blobs a ledgered purge deletes that are not gone yet. */
  pendingBlobs(): string[];
  /** Records what became of a pending blob (the database copy; the ledger already says why). */
  settleBlob(sha256: string, state: 'deleted' | 'kept', at: string): void;
}

type Row = Record<string, unknown>;

function toRule(r: Row): RuleInfo {
  return {
    id: r.id as string, name: r.name as string,
    match: { participants: JSON.parse(r.participants as string) as string[], query: (r.query as string | null) ?? null },
    period: r.period_count === null ? null : { count: r.period_count as number, unit: r.period_unit as 'days' | 'months' | 'years' },
    from: r.count_from as 'arrival' | 'date', created_by: r.created_by as string, created_at: r.created_at as string, seq: r.seq as number,
  };
}

function toHold(r: Row): HoldInfo {
  return {
    id: r.id as string, case: r.case_name as string, reason: r.reason as string,
    match: {
      participants: JSON.parse(r.participants as string) as string[], query: (r.query as string | null) ?? null,
      since: (r.since as string | null) ?? null, until: (r.until as string | null) ?? null,
    },
    placed_by: r.placed_by as string, placed_at: r.placed_at as string, seq: r.place_seq as number,
    released: r.released_at === null ? null
      : { by: r.released_by as string, at: r.released_at as string, reason: r.release_reason as string, seq: r.release_seq as number },
  };
}

function toTombstone(r: Row): TombstoneInfo {
  return {
    id: r.id as number, sha256: r.sha256 as string, message_id: r.message_id as string | null, date: r.date as string | null,
    arrived: r.arrived as string, expired: r.expired as string, rule: r.rule as string, purged_at: r.purged_at as string,
    run: r.run as string, seq: r.seq as number, deliveries: JSON.parse(r.deliveries as string) as TombstoneInfo['deliveries'],
  };
}

export function createRetentionReader(db: Db): RetentionReader {
  const q = {
    rules: db.prepare("SELECT * FROM retention_rules ORDER BY id <> 'default', created_at, id"),
    rule: db.prepare('SELECT * FROM retention_rules WHERE id = ?'),
    holds: db.prepare('SELECT * FROM holds ORDER BY placed_at DESC, id'),
    activeHolds: db.prepare('SELECT * FROM holds WHERE released_at IS NULL ORDER BY placed_at DESC, id'),
    hold: db.prepare('SELECT * FROM holds WHERE id = ?'),
    runs: db.prepare('SELECT * FROM purge_runs ORDER BY first_seq DESC LIMIT ?'),
    run: db.prepare('SELECT * FROM purge_runs WHERE run = ?'),
    tombstone: db.prepare('SELECT * FROM tombstones WHERE id = ?'),
    tombstonesOfRun: db.prepare('SELECT * FROM tombstones WHERE run = ? ORDER BY id'),
    pending: db.prepare("SELECT sha256 FROM purge_blobs WHERE state = 'pending' ORDER BY seq, sha256").pluck(),
    settle: db.prepare("UPDATE purge_blobs SET state = ?, done_at = ? WHERE sha256 = ? AND state = 'pending'"),
  };
  return {
    rules() {
      const rules = (q.rules.all() as Row[]).map(toRule);
      if (rules[0]?.id === 'default') return rules;
      return [{ ...FOREVER_DEFAULT, created_by: 'spindle', created_at: '', seq: 0 }, ...rules];
    },
    rule(id) {
      const r = q.rule.get(id) as Row | undefined;
      if (r) return toRule(r);
      return id === 'default' ? { ...FOREVER_DEFAULT, created_by: 'spindle', created_at: '', seq: 0 } : null;
    },
    holds: (opts = {}) => ((opts.active ? q.activeHolds : q.holds).all() as Row[]).map(toHold),
    hold(id) {
      const r = q.hold.get(id) as Row | undefined;
      return r ? toHold(r) : null;
    },
    runs: (limit = 50) => q.runs.all(limit) as PurgeRunInfo[],
    run: (id) => (q.run.get(id) as PurgeRunInfo | undefined) ?? null,
    tombstone(id) {
      const r = q.tombstone.get(id) as Row | undefined;
      return r ? toTombstone(r) : null;
    },
    tombstonesOfRun: (run) => (q.tombstonesOfRun.all(run) as Row[]).map(toTombstone),
    pendingBlobs: () => q.pending.all() as string[],
    settleBlob(sha256, state, at) {
      q.settle.run(state, at, sha256);
    },
  };
}
