import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Db } from '../db/database.js';
import type { RetentionReader } from '../db/retention-reader.js';
import type { Ledger } from '../ledger/ledger.js';
import type { HoldSpec, PurgeBody, PurgedMessage, RetentionRule } from '../ledger/records.js';
import type { BlobStore } from '../store/blob-store.js';
import { createEvaluator } from './evaluate.js';
import { blobBytes, type Candidate } from './plan.js';

/** Where a purge batch stands; tests kill the process at each of these to prove crash safety. */
export type PurgeStep = 'planned' | 'ledgered' | 'applied' | 'deleting';

export interface PurgeDeps {
  db: Db;
  reader: RetentionReader;
  ledger: Pick<Ledger, 'append' | 'flushed'>;
  store: Pick<BlobStore, 'watch' | 'delete'>;
  /** Resolves once every committed ledger record is applied to the database. */
  indexed: () => Promise<void>;
  /** The last ledger seq the database has applied. */
  indexedSeq: () => number;
  log: Logger;
  now: () => Date;
  /** Tests only: called at each step of each batch (the crash tests kill the process there). */
  onStep?: (step: PurgeStep) => void | Promise<void>;
}

export interface BlobSettlement {
  deleted: number;
  /** New mail needs the bytes again: kept. */
  kept: number;
  /** Could not be settled now (a put of the same bytes is under way, or an error): next run. */
  pending: number;
}

/**
 * Deletes blobs that ledgered purges removed from the database, unless a delivery needs them
 * again. Only for blobs watch()ed before a ledger barrier that the database has since applied
 * (see finishPending): any put that found these bytes before the watch then has its delivery in
 * the database, and any later one makes the store refuse the deletion.
 */
async function settleBlobs(deps: PurgeDeps, shas: readonly string[]): Promise<BlobSettlement> {
  const inUse = deps.db.prepare('SELECT 1 FROM deliveries WHERE blob_sha256 = ? LIMIT 1').pluck();
  const result: BlobSettlement = { deleted: 0, kept: 0, pending: 0 };
  let first = true;
  for (const sha of shas) {
    const at = deps.now().toISOString();
    if (inUse.get(sha)) {
      deps.reader.settleBlob(sha, 'kept', at);
      result.kept++;
      continue;
    }
    try {
      if (await deps.store.delete(sha)) {
        deps.reader.settleBlob(sha, 'deleted', at);
        result.deleted++;
      } else {
        deps.log.info({ event: 'purge.blob_reclaimed', sha256: sha }, 'purged blob stored again by new mail meanwhile; left for the next run to decide');
        result.pending++;
      }
    } catch (err) {
      deps.log.error({ event: 'purge.blob_delete_failed', sha256: sha, err }, 'could not delete a purged blob; the next run retries');
      result.pending++;
    }
    if (first) {
      first = false;
      await deps.onStep?.('deleting');
    }
  }
  return result;
}

/**
 * The last step of a purge: deletes every blob that ledgered purges left pending, after each
 * batch, and at start-up for a purge a crash interrupted. Safe beside live SMTP sessions: the
 * blobs are watched first, then the ledger is flushed and applied (a barrier), then each is
 * deleted only if no delivery names it and no put has needed it since the watch.
 */
export async function finishPending(deps: PurgeDeps): Promise<BlobSettlement> {
  const pending = deps.reader.pendingBlobs();
  if (pending.length === 0) return { deleted: 0, kept: 0, pending: 0 };
  deps.store.watch(pending);
  await yieldToLoop();
  await deps.ledger.flushed();
  await deps.indexed();
  return settleBlobs(deps, pending);
}

/** Builds purge record entries from the database as it is now (null: the message went meanwhile). */
function entryBuilder(db: Db): (c: Candidate) => PurgedMessage | null {
  const q = {
    message: db.prepare('SELECT blob_sha256, message_id, date, first_seen FROM messages WHERE id = ?'),
    deliveries: db.prepare('SELECT seq, blob_sha256 AS blob FROM deliveries WHERE message = ? ORDER BY seq'),
    elsewhere: db.prepare('SELECT 1 FROM deliveries WHERE blob_sha256 = ? AND message <> ? LIMIT 1').pluck(),
  };
  const bytesOf = blobBytes(db);
  return (c) => {
    const m = q.message.get(c.id) as { blob_sha256: string; message_id: string | null; date: string | null; first_seen: string } | undefined;
    if (!m) return null;
    const deliveries = q.deliveries.all(c.id) as Array<{ seq: number; blob: string }>;
    // A blob another message's delivery names stays (only possible for bytes that arrived again after an earlier purge).
    const blobs = [...new Set(deliveries.map((d) => d.blob))].filter((b) => !q.elsewhere.get(b, c.id));
    const b = bytesOf(c.id);
    return {
      id: c.id, deliveries, blobs, sha256: m.blob_sha256, messageId: m.message_id, date: m.date, arrived: m.first_seen,
      expired: new Date(c.expires).toISOString(), rule: c.rule, bytes: b.bytes, storedBytes: b.stored,
    };
  };
}

export interface BatchInput {
  run: string;
  asOf: number;
  actor: string;
  /** Held messages counted when the run was planned; recorded with the first batch. */
  held: number;
  final: boolean;
  candidates: Candidate[];
}

export interface BatchResult {
  seq: number;
  /** Entries of the record that the database applied (the others were kept: a delivery joined them). */
  purged: PurgedMessage[];
  skipped: number;
}

/**
 * One batch, in the order that makes a crash at any point safe:
 * 1. check each candidate again against the rules and holds in force now (the plan may be old);
 * 2. watch its blobs, then append ONE purge record and wait until it is durable: from here on the
 *    purge is decided, and a restart or `rebuild` applies it;
 * 3. wait until the indexer has applied the record (messages, deliveries, index rows out;
 *    tombstones in) in one transaction, the same way a rebuild applies it;
 * 4. delete the blobs no remaining delivery needs (settleBlobs), last.
 * A crash before 2 leaves nothing done; between 2 and 4 the record is applied at restart and the
 * blobs stay pending in purge_blobs until the next run (or start) deletes them.
 * The caller holds the retention lock for steps 1-3, so no rule or hold changes in between.
 */
export async function purgeBatch(deps: PurgeDeps, rules: readonly RetentionRule[], holds: readonly HoldSpec[], input: BatchInput): Promise<BatchResult> {
  const { db } = deps;
  const evaluator = createEvaluator(db, rules, holds, input.asOf);
  const entryFor = entryBuilder(db);
  const messages: PurgedMessage[] = [];
  for (const c of input.candidates) {
    const v = evaluator.range(c.id, c.id)[0];
    if (!v || !v.expired || v.holds.length > 0) continue;
    const entry = entryFor({ id: c.id, rule: v.governing.rule, expires: v.governing.expires });
    if (entry) messages.push(entry);
  }
  deps.store.watch(messages.flatMap((m) => m.blobs));
  // A put that found these bytes just before the watch calls ledger.append in the same tick:
  // yielding once puts its delivery ahead of the purge record in the ledger.
  await yieldToLoop();
  await deps.onStep?.('planned');
  const body: PurgeBody = {
    type: 'purge', run: input.run, asOf: new Date(input.asOf).toISOString(), basis: deps.indexedSeq(), actor: input.actor,
    held: input.held, final: input.final, messages,
  };
  const record = await deps.ledger.append(body);
  deps.log.info({ event: 'purge.ledgered', seq: record.seq, run: input.run, messages: messages.length }, 'purge batch ledgered');
  await deps.onStep?.('ledgered');
  await deps.indexed();
  await deps.onStep?.('applied');
  const tombstoned = new Set(deps.db.prepare('SELECT id FROM tombstones WHERE seq = ?').pluck().all(record.seq) as number[]);
  const purged = messages.filter((m) => tombstoned.has(m.id));
  return { seq: record.seq, purged, skipped: messages.length - purged.length };
}
