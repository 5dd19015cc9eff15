import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { IndexInput, IndexSink } from './index-sink.js';
import type { FallbackDefect, IndexReply, IndexRequest, IndexWorkerData } from './index-worker.js';
import { startModuleWorker } from './worker-start.js';

export interface IndexThreadOptions {
  dbFile: string;
  archiveAddresses: string[];
  trustedEnvelopeHeader: string;
  /** SPINDLE_PARSE_WORKERS (>= 1): 1 parses on the index thread; N > 1 gives it N parse workers. */
  parseWorkers: number;
  /** The highest seq the database has applied, read on the caller's own connection. */
  readIndexedSeq: () => number;
  log: Logger;
  /** A batch not answered within this long means the thread is stuck: it is replaced. Default 120 s. */
  watchdogMs?: number;
  /** Tests only: passed to the worker (see IndexWorkerData.faults). */
  faults?: IndexWorkerData['faults'];
}

/** The index thread went away (crashed, exited, or was stopped by the watchdog) with a batch in hand. */
class ThreadLost extends Error {
  constructor(readonly defect: FallbackDefect, message: string) {
    super(message);
  }
}

type Item = IndexRequest['items'][number];

/**
 * Runs parsing and the database writes of the index on one worker thread with its own SQLite
 * connection, so that neither mailparser nor FTS5 runs on the SMTP event loop, and a parsed
 * message never crosses a thread boundary (only the raw bytes do, transferred).
 *
 * A batch that takes the thread down is retried one message at a time on a fresh thread; the
 * message that brings it down alone is then indexed from the fallback scan (defect parse-crash or
 * parse-timeout), as the parse pool does. A batch the database refuses is an ordinary error: the
 * indexer retries it.
 */
export function createIndexThread(opts: IndexThreadOptions): IndexSink {
  const watchdogMs = opts.watchdogMs ?? 120_000;
  const workerData: IndexWorkerData = {
    dbFile: opts.dbFile, archiveAddresses: opts.archiveAddresses, trustedEnvelopeHeader: opts.trustedEnvelopeHeader,
    parseWorkers: opts.parseWorkers > 1 ? opts.parseWorkers : 0,
    ...(opts.faults ? { faults: opts.faults } : {}),
  };
  let thread: { worker: Worker; ready: Promise<void> } | null = null;
  let nextId = 0;
  const pending = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let closed = false;

  function lose(worker: Worker, defect: FallbackDefect, message: string): void {
    if (thread?.worker !== worker) return;
    thread = null;
    void worker.terminate().catch(() => undefined);
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ThreadLost(defect, message));
    }
    pending.clear();
  }

  function start(): { worker: Worker; ready: Promise<void> } {
    const worker = startModuleWorker('index-worker', { workerData });
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', (m: { ready?: true }) => (m.ready ? resolve() : reject(new Error('index thread did not start'))));
      worker.once('exit', (code) => reject(new Error(`index thread exited with code ${code} while starting`)));
      worker.once('error', reject);
    });
    ready.catch(() => undefined);
    worker.on('message', (m: IndexReply | { ready: true }) => {
      if ('ready' in m) return;
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if ('error' in m) p.reject(new Error(`indexing failed: ${m.error}`));
      else p.resolve(m.applied);
    });
    worker.on('error', (err) => {
      opts.log.error({ event: 'index.thread_crash', err }, 'index thread crashed; restarting it');
      lose(worker, 'parse-crash', err.message);
    });
    worker.on('exit', (code) => {
      if (!closed) opts.log.error({ event: 'index.thread_exit', code }, 'index thread exited; restarting it');
      lose(worker, 'parse-crash', `index thread exited with code ${code}`);
    });
    return { worker, ready };
  }

  async function send(items: Item[]): Promise<number> {
    if (closed) throw new Error('index thread is closed');
    thread ??= start();
    const { worker, ready } = thread;
    await ready;
    const id = ++nextId;
    const transfer: ArrayBuffer[] = [];
    const request: IndexRequest = {
      id,
      items: items.map((item) => {
        if (!item.raw) return item;
        // Our own copy, transferred rather than cloned; the caller's buffer may live in a cache.
        const copy = new Uint8Array(item.raw.byteLength);
        copy.set(item.raw);
        transfer.push(copy.buffer);
        return { ...item, raw: copy };
      }),
    };
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        opts.log.error({ event: 'index.thread_stuck', first: items[0]?.record.seq, count: items.length, ms: watchdogMs }, 'index thread did not answer; replacing it');
        lose(worker, 'parse-timeout', `index thread did not answer within ${watchdogMs} ms`);
      }, watchdogMs);
      pending.set(id, { resolve, reject, timer });
      worker.postMessage(request, transfer);
    });
  }

  async function apply(items: Item[]): Promise<number> {
    try {
      return await send(items);
    } catch (err) {
      if (!(err instanceof ThreadLost) || closed) throw err;
      const only = items.length === 1 ? items[0] : undefined;
      if (only) {
        // A record without mail has nothing to parse differently: that failure is an ordinary one.
        if (only.fallback || only.record.type !== 'delivery') throw err;
        opts.log.warn({ event: 'index.fallback', seq: only.record.seq, defect: err.defect }, 'message took the index thread down; indexing it from the fallback scan');
        return apply([{ ...only, fallback: err.defect }]);
      }
      // One of them did it: each again, alone and in seq order, on a fresh thread.
      let applied = 0;
      for (const item of items) applied += await apply([item]);
      return applied;
    }
  }

  return {
    indexedSeq: opts.readIndexedSeq,
    apply: (batch: IndexInput[]) => apply(batch.map((b) => ({ record: b.record, raw: b.raw }))),
    async close() {
      closed = true;
      const t = thread;
      thread = null;
      if (t) await t.worker.terminate();
    },
  };
}
