import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/ledger.js';
import type { LedgerRecord } from '../ledger/records.js';
import type { BlobStore } from '../store/blob-store.js';
import type { IndexInput, IndexSink } from './index-sink.js';

export interface IndexerOptions {
  ledger: Pick<Ledger, 'read' | 'lastSeq' | 'onCommit'>;
  store: BlobStore;
  /** Parses and writes; the indexer owns it and closes it. */
  sink: IndexSink;
  log: Logger;
  batchSize?: number;
  /** How long a live batch may gather before it is indexed (ms). */
  gatherMs?: number;
  /**
   * Deliveries a purge record in the ledger removes (rebuild reads them first): their blobs may be
   * gone, which is then no loss, and no error is logged.
   */
  purgedSeqs?: ReadonlySet<number>;
  /** Called per applied batch with how long records waited from commit to searchable. */
  onIndexed?: (records: number, waitSeconds: number[]) => void;
}

export interface IndexLag {
  /** Committed ledger records not yet in the index. */
  records: number;
  /** Age of the oldest of them, in seconds (0 when caught up). */
  seconds: number;
}

export interface Indexer {
  /** Catches up from the last indexed seq, then follows new commits. Resolves when caught up. */
  start(): Promise<void>;
  /** Indexes everything in the ledger and returns; for `spindle rebuild`. */
  runOnce(onProgress?: (seq: number, last: number) => void): Promise<number>;
  lag(): IndexLag;
  /** Resolves once every record committed so far is searchable. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Feeds the database from the ledger, behind the 250: gathers committed records into batches,
 * fetches their blobs and hands them to the sink (parse, recover the envelope, dedup, write one
 * transaction per batch). The ledger is the queue: on start-up it
 * resumes after the last seq the database recorded, so nothing acknowledged is ever skipped.
 */
export function createIndexer(opts: IndexerOptions): Indexer {
  const { ledger, store, sink, log } = opts;
  const batchSize = opts.batchSize ?? 128;
  const gatherMs = opts.gatherMs ?? 50;
  const events = new EventEmitter();
  let live: LedgerRecord[] = [];
  let following = false;
  let indexed = sink.indexedSeq();
  let running: Promise<void> | null = null;
  let closed = false;
  const commitTimes = new Map<number, number>();

  async function toInput(record: LedgerRecord): Promise<IndexInput | null> {
    if (record.type !== 'delivery') return { record, raw: null };
    try {
      return { record, raw: await store.get(record.blob) };
    } catch (err) {
      if (opts.purgedSeqs?.has(record.seq)) {
        // Replaying a delivery that a later purge record removes: its blob is gone on purpose.
        log.debug({ event: 'index.blob_purged', seq: record.seq, sha256: record.blob }, 'blob of a purged delivery is gone; not indexed');
        return null;
      }
      // The ledger says we have it and the store disagrees: a loss that verify will report.
      log.error({ event: 'index.blob_missing', seq: record.seq, sha256: record.blob, err }, 'blob of a ledger record is missing; not indexed');
      return null;
    }
  }

  async function applyBatch(records: LedgerRecord[]): Promise<void> {
    const inputs = (await Promise.all(records.map(toInput))).filter((i): i is IndexInput => i !== null);
    const applied = inputs.length > 0 ? await sink.apply(inputs) : 0;
    const last = records.at(-1)!.seq;
    indexed = Math.max(indexed, last);
    const now = performance.now();
    const waits: number[] = [];
    for (const r of records) {
      const t = commitTimes.get(r.seq);
      if (t !== undefined) {
        waits.push((now - t) / 1000);
        commitTimes.delete(r.seq);
      }
    }
    opts.onIndexed?.(applied, waits);
    log.debug({ event: 'index.batch', records: records.length, last }, 'indexed');
    events.emit('indexed', indexed);
  }

  async function catchUp(upTo: number, onProgress?: (seq: number, last: number) => void): Promise<void> {
    let batch: LedgerRecord[] = [];
    for await (const record of ledger.read(indexed + 1, upTo)) {
      batch.push(record);
      if (batch.length >= batchSize) {
        await applyBatch(batch);
        onProgress?.(indexed, upTo);
        batch = [];
      }
    }
    if (batch.length > 0) await applyBatch(batch);
    onProgress?.(indexed, upTo);
  }

  function pump(): void {
    if (running || closed || !following) return;
    running = (async () => {
      while (live.length > 0 && !closed) {
        // Let a batch gather for a moment: FTS5 and SQLite pay per transaction, so fewer, larger
        // ones index more per CPU second; searchable latency stays far under the 2 s target.
        if (live.length < batchSize && gatherMs > 0) await new Promise((r) => setTimeout(r, gatherMs));
        const batch = live.splice(0, batchSize).filter((r) => r.seq > indexed);
        if (batch.length === 0) continue;
        try {
          await applyBatch(batch);
        } catch (err) {
          // Put them back and retry shortly; the 250s are already given, so never drop them.
          live.unshift(...batch);
          log.error({ event: 'index.batch_failed', err, first: batch[0]!.seq }, 'indexing failed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })().finally(() => {
      running = null;
      if (live.length > 0) pump();
    });
  }

  return {
    async start() {
      ledger.onCommit((records) => {
        const now = performance.now();
        for (const r of records) commitTimes.set(r.seq, now);
        live.push(...records);
        pump();
      });
      const upTo = ledger.lastSeq();
      if (upTo > indexed) {
        log.info({ event: 'index.catch_up', from: indexed + 1, to: upTo }, 'indexing ledger records not yet in the database');
        await catchUp(upTo);
      }
      following = true;
      pump();
    },
    async runOnce(onProgress) {
      await catchUp(ledger.lastSeq(), onProgress);
      return indexed;
    },
    lag() {
      const records = Math.max(0, ledger.lastSeq() - indexed);
      let oldest = Infinity;
      for (const [seq, t] of commitTimes) if (seq > indexed && t < oldest) oldest = t;
      return { records, seconds: records > 0 && oldest !== Infinity ? (performance.now() - oldest) / 1000 : 0 };
    },
    idle() {
      const target = ledger.lastSeq();
      if (indexed >= target) return Promise.resolve();
      return new Promise((resolve) => {
        const check = (seq: number) => {
          if (seq >= target) {
            events.off('indexed', check);
            resolve();
          }
        };
        events.on('indexed', check);
      });
    },
    async close() {
      // Finish what is in hand; whatever remains is picked up from the ledger on the next start.
      closed = true;
      await running;
      await sink.close();
    },
  };
}
