import { randomBytes } from 'node:crypto';
import type { RuleInfo } from '../db/retention-reader.js';
import type { HoldBody, RetentionRuleBody } from '../ledger/records.js';
import { holdFromInput, RetentionError, ruleFromInput, type HoldInput, type RuleInput } from './inputs.js';
import { planPurge, type RuleTotals } from './plan.js';
import { finishPending, purgeBatch, type BlobSettlement, type PurgeDeps } from './purge.js';
import { createRetentionQueries, reportOf, type HoldView, type PurgeReport, type RetentionQueries, type RunView } from './queries.js';

export { purgeAuditDetails, type Explanation, type HoldView, type PurgeReport, type RunView } from './queries.js';

export interface RetentionService extends Omit<RetentionQueries, 'runs' | 'reader'> {
  addRule(input: RuleInput, actor: string): Promise<RuleInfo>;
  /** Removing 'default' puts back keep-forever. */
  removeRule(id: string, actor: string): Promise<RuleInfo>;
  placeHold(input: HoldInput, actor: string): Promise<HoldView>;
  releaseHold(id: string, reason: string, actor: string): Promise<HoldView>;
  run(opts: { asOf: Date; actor: string }): Promise<PurgeReport>;
  running(): boolean;
  runs(limit?: number): RunView[];
  /** Deletes blobs an interrupted purge left behind (see purge.ts). */
  finishPending(): Promise<BlobSettlement>;
  /** Stops a running purge after its current batch and waits for it. */
  stop(): Promise<void>;
}

export interface RetentionServiceOptions extends Omit<PurgeDeps, 'reader'> {
  /** Messages per purge record (default 500). */
  batchSize?: number;
}

/**
 * Retention rules, legal holds and purges, for the one process that writes the ledger (the server,
 * or a command holding the data-directory lock). Changes are ledger records, applied to the
 * database by the indexer like deliveries; they and every purge batch are serialized, so a hold
 * placed during a purge is in force for the purge's next batch.
 */
export function createRetentionService(opts: RetentionServiceOptions): RetentionService {
  const queries = createRetentionQueries(opts.db, opts.now);
  const { reader } = queries;
  const deps: PurgeDeps = { ...opts, reader };
  const batchSize = opts.batchSize ?? 500;
  let chain: Promise<unknown> = Promise.resolve();
  let active: Promise<PurgeReport> | null = null;
  let stopping = false;

  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = chain.then(fn);
    chain = p.catch(() => undefined);
    return p;
  }

  // One settlement at a time: a second one working from the same list of pending blobs could
  // delete bytes that new mail stored again after the first had settled them.
  let settling: Promise<unknown> = Promise.resolve();
  function settle(): Promise<BlobSettlement> {
    const p = settling.then(() => finishPending(deps));
    settling = p.catch(() => undefined);
    return p;
  }

  async function ledgered(body: RetentionRuleBody | HoldBody): Promise<void> {
    await opts.ledger.append(body);
    await opts.indexed();
  }

  async function runPurge(asOf: number, actor: string): Promise<PurgeReport> {
    const started = performance.now();
    const run = `p-${opts.now().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
    await opts.indexed();
    const plan = await planPurge(opts.db, reader.rules(), reader.holds({ active: true }), asOf);
    const batches: Array<typeof plan.candidates> = [];
    for (let i = 0; i < plan.candidates.length; i += batchSize) batches.push(plan.candidates.slice(i, i + batchSize));
    if (batches.length === 0) batches.push([]); // a run that removes nothing is on record too
    const totals = new Map<string, RuleTotals>();
    const blobs: BlobSettlement = { deleted: 0, kept: 0, pending: 0 };
    let skipped = 0;
    let complete = true;
    for (let i = 0; i < batches.length; i++) {
      if (stopping) {
        complete = false;
        break;
      }
      const result = await exclusive(() => purgeBatch(deps, reader.rules(), reader.holds({ active: true }), {
        run, asOf, actor, held: i === 0 ? plan.heldCount : 0, final: i === batches.length - 1, candidates: batches[i]!,
      }));
      skipped += result.skipped;
      for (const m of result.purged) {
        const t = totals.get(m.rule) ?? { rule: m.rule, messages: 0, bytes: 0, stored_bytes: 0 };
        t.messages++;
        t.bytes += m.bytes;
        t.stored_bytes += m.storedBytes;
        totals.set(m.rule, t);
      }
      const settled = await settle();
      blobs.deleted += settled.deleted;
      blobs.kept += settled.kept;
      blobs.pending = settled.pending;
    }
    const byRule = [...totals.values()].sort((a, b) => a.rule.localeCompare(b.rule));
    const report = reportOf({ ...plan, byRule }, run, reader.rules());
    opts.log.info({ event: 'purge.done', run, messages: report.messages, held: plan.heldCount, skipped, blobs, complete }, 'purge run finished');
    return { ...report, skipped, blobs, complete, seconds: (performance.now() - started) / 1000 };
  }

  return {
    ...queries,
    async addRule(input, actor) {
      const rule = ruleFromInput(input);
      await exclusive(() => ledgered({ type: 'retention-rule', action: 'add', rule, actor }));
      return reader.rule(rule.id)!;
    },
    removeRule(id, actor) {
      return exclusive(async () => {
        const rule = reader.rule(id);
        if (!rule || (id === 'default' && rule.seq === 0)) throw new RetentionError('no_such_rule', id === 'default' ? 'the default is already keep-forever' : `no rule ${id}`);
        const { created_by: _by, created_at: _at, seq: _seq, ...plain } = rule;
        await ledgered({ type: 'retention-rule', action: 'remove', rule: plain, actor });
        return rule;
      });
    },
    async placeHold(input, actor) {
      const hold = holdFromInput(input);
      await exclusive(() => ledgered({ type: 'hold', action: 'place', hold, reason: input.reason.trim(), actor }));
      return queries.hold(hold.id)!;
    },
    async releaseHold(id, reason, actor) {
      if (!reason.trim()) throw new RetentionError('bad_hold', 'say why the hold is released');
      return exclusive(async () => {
        const h = reader.hold(id);
        if (!h) throw new RetentionError('no_such_hold', `no hold ${id}`);
        if (h.released) throw new RetentionError('hold_released', `hold ${id} was released ${h.released.at} by ${h.released.by}`);
        await ledgered({ type: 'hold', action: 'release', hold: { id: h.id, case: h.case, match: h.match }, reason: reason.trim(), actor });
        return queries.hold(id)!;
      });
    },
    run({ asOf, actor }) {
      if (active) return Promise.reject(new RetentionError('purge_running', 'a purge is already running'));
      stopping = false;
      const p = runPurge(asOf.getTime(), actor).finally(() => {
        active = null;
      });
      active = p;
      return p;
    },
    running: () => active !== null,
    runs: (limit) => queries.runs(limit, active !== null),
    finishPending: settle,
    async stop() {
      stopping = true;
      await active?.catch(() => undefined);
    },
  };
}
