import type { Db } from '../db/database.js';
import { createRetentionReader, type HoldInfo, type PurgeRunInfo, type RetentionReader, type RuleInfo, type TombstoneInfo } from '../db/retention-reader.js';
import { selectorSql } from '../search/selector.js';
import { createEvaluator } from './evaluate.js';
import { formatPeriod } from './period.js';
import { planPurge, type HeldMessage, type PurgePlan, type RuleTotals } from './plan.js';
import type { BlobSettlement } from './purge.js';

export interface PurgeReport {
  /** null for a dry run. */
  run: string | null;
  dry_run: boolean;
  as_of: string;
  messages: number;
  bytes: number;
  stored_bytes: number;
  by_rule: Array<RuleTotals & { name: string }>;
  /** Expired messages a hold keeps: how many, and the first of them. */
  held: { messages: number; items: HeldMessage[] };
  /** Chosen, but a duplicate delivery joined them meanwhile: left for the next run. */
  skipped: number;
  blobs: BlobSettlement | null;
  /** False when the server stopped the run between batches; the next run finishes it. */
  complete: boolean;
  seconds: number;
}

/** Flat audit details of a purge run (audit details hold no nested values). */
export function purgeAuditDetails(r: PurgeReport): Record<string, string | number | boolean | null> {
  return {
    run: r.run, as_of: r.as_of, dry_run: r.dry_run, messages: r.messages, bytes: r.bytes, held: r.held.messages,
    skipped: r.skipped, complete: r.complete, blobs_deleted: r.blobs?.deleted ?? null, blobs_pending: r.blobs?.pending ?? null,
  };
}

export interface Explanation {
  id: number;
  as_of: string;
  /** kept: not expired; expired: the next purge removes it; held: expired but under a hold; purged: gone. */
  status: 'kept' | 'expired' | 'held' | 'purged';
  message: { message_id: string | null; date: string | null; arrived: string } | null;
  rules: Array<{ id: string; name: string; period: string; from: 'arrival' | 'date'; expires: string | null; governing: boolean }>;
  /** No rule matches: the default governs. */
  default_applies: boolean;
  expires: string | null;
  holds: Array<{ id: string; case: string }>;
  tombstone: TombstoneInfo | null;
}

export type HoldView = HoldInfo & { messages: number | null };
export type RunView = PurgeRunInfo & { status: 'done' | 'running' | 'interrupted' };

/** What anyone may ask without writing: safe beside a live server (dry runs included). */
export interface RetentionQueries {
  reader: RetentionReader;
  rules(): RuleInfo[];
  holds(opts?: { active?: boolean }): HoldView[];
  hold(id: string): HoldView | null;
  explain(id: number, asOf?: Date): Explanation | null;
  /** Dry run: what a purge at asOf would remove, per rule, and which expired mail holds keep. */
  plan(asOf: Date): Promise<PurgeReport>;
  runs(limit?: number, running?: boolean): RunView[];
  pendingBlobs(): number;
}

const EVERYTHING = { lo: -Number.MAX_SAFE_INTEGER, hi: Number.MAX_SAFE_INTEGER };
const iso = (ms: number): string | null => (Number.isFinite(ms) ? new Date(ms).toISOString() : null);

/** A purge plan as the report the API and CLI show; `run` null for a dry run. */
export function reportOf(plan: PurgePlan, run: string | null, rules: readonly RuleInfo[]): PurgeReport {
  const names = new Map(rules.map((r) => [r.id, r.name]));
  const byRule = plan.byRule.map((t) => ({ ...t, name: names.get(t.rule) ?? t.rule }));
  return {
    run, dry_run: run === null, as_of: new Date(plan.asOf).toISOString(),
    messages: byRule.reduce((n, t) => n + t.messages, 0), bytes: byRule.reduce((n, t) => n + t.bytes, 0),
    stored_bytes: byRule.reduce((n, t) => n + t.stored_bytes, 0), by_rule: byRule,
    held: { messages: plan.heldCount, items: plan.held }, skipped: 0, blobs: null, complete: true, seconds: 0,
  };
}

export function createRetentionQueries(db: Db, now: () => Date): RetentionQueries {
  const reader = createRetentionReader(db);
  const countOf = (h: HoldInfo): number => {
    const s = selectorSql(h.match);
    return db.prepare(`SELECT count(*) FROM messages m WHERE ${s.sql}`).pluck().get(...s.params(EVERYTHING.lo, EVERYTHING.hi)) as number;
  };
  const view = (h: HoldInfo): HoldView => ({ ...h, messages: h.released ? null : countOf(h) });

  return {
    reader,
    rules: () => reader.rules(),
    holds: (o) => reader.holds(o).map(view),
    hold(id) {
      const h = reader.hold(id);
      return h ? view(h) : null;
    },
    explain(id, asOf = now()) {
      const rules = reader.rules();
      const holds = reader.holds({ active: true });
      const v = createEvaluator(db, rules, holds, asOf.getTime()).range(id, id)[0];
      const base = { id, as_of: asOf.toISOString() };
      if (!v) {
        const tombstone = reader.tombstone(id);
        if (!tombstone) return null;
        return { ...base, status: 'purged', message: null, rules: [], default_applies: false, expires: tombstone.expired, holds: [], tombstone };
      }
      const byId = new Map(rules.map((r) => [r.id, r]));
      return {
        ...base,
        status: !v.expired ? 'kept' : v.holds.length ? 'held' : 'expired',
        message: { message_id: v.facts.messageId, date: v.facts.date, arrived: v.facts.firstSeen },
        rules: v.matched.map((m) => {
          const r = byId.get(m.rule)!;
          return { id: r.id, name: r.name, period: formatPeriod(r.period), from: r.from, expires: iso(m.expires), governing: m === v.governing };
        }),
        default_applies: v.matched.length === 1 && v.matched[0]!.rule === 'default',
        expires: iso(v.governing.expires),
        holds: v.holds.map((hid) => ({ id: hid, case: holds.find((h) => h.id === hid)?.case ?? '' })),
        tombstone: null,
      };
    },
    async plan(asOf) {
      const started = performance.now();
      const rules = reader.rules();
      const plan = await planPurge(db, rules, reader.holds({ active: true }), asOf.getTime());
      return { ...reportOf(plan, null, rules), seconds: (performance.now() - started) / 1000 };
    },
    runs(limit, running = false) {
      return reader.runs(limit).map((r, i) => ({
        ...r,
        // A run without its final record is still going only if it is the newest and one is active.
        status: r.finished_at ? 'done' : i === 0 && running ? 'running' : 'interrupted',
      }));
    },
    pendingBlobs: () => reader.pendingBlobs().length,
  };
}
