import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir as syncDir } from '../store/dir-sync.js';
import type { Chained } from './records.js';
import { lineHash, listSegments, readLines, recoverTail, segmentName } from './segments.js';

/** An append-only, hash-chained log of JSON lines: the shape of the ledger and the audit trail. */
export interface ChainedLog<B extends object> {
  /** Appends a record; resolves once it is on disk (fsync), shared with concurrent appends. */
  append(body: B): Promise<Chained<B>>;
  /** Called after every commit with the committed records, in seq order. */
  onCommit(listener: (records: Array<Chained<B>>) => void): void;
  /** Committed records with fromSeq <= seq <= toSeq (default: the last committed), from disk. */
  read(fromSeq?: number, toSeq?: number): AsyncGenerator<Chained<B>>;
  lastSeq(): number;
  /** Resolves once every append made before the call is on disk (or has failed): a barrier, no record of its own. */
  flushed(): Promise<void>;
  close(): Promise<void>;
}

export interface ChainedLogOptions {
  dir: string;
  log: Logger;
  /** Start a new segment past this size. */
  segmentBytes?: number;
  now?: () => Date;
  /** Names the log in event names (`<name>.torn_tail`), messages and errors. */
  name: string;
  /** What a failed write means for the callers, for the log line ("deliveries answered 4xx"). */
  onWriteFailure: string;
  /** The error appends are rejected with, so each log keeps its own error type and code. */
  unavailable: (message: string) => Error;
}

/**
 * One writer; concurrent appends are group-committed: while one write+fsync is in flight the
 * next batch gathers, so the number of fsyncs per second stays bounded however many records
 * arrive, and a lone record is never held back waiting for a batch to fill.
 */
export async function openChainedLog<B extends object>(opts: ChainedLogOptions): Promise<ChainedLog<B>> {
  const { name, unavailable } = opts;
  const dir = path.resolve(opts.dir);
  const segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
  const now = opts.now ?? (() => new Date());
  await fsp.mkdir(dir, { recursive: true });
  const tail = await recoverTail(dir);
  if (tail.torn) opts.log.warn({ event: `${name}.torn_tail`, file: tail.torn }, `incomplete last ${name} record moved aside (it was never acknowledged)`);
  let seq = tail.lastSeq;
  let prev = tail.lastHash;

  const current = listSegments(dir).at(-1);
  let file = current ? current.file : path.join(dir, segmentName(seq + 1));
  let handle = await fsp.open(file, 'a');
  let size = (await handle.stat()).size;
  if (!current) await syncDir(dir);

  type Pending = { body: B; resolve: (r: Chained<B>) => void; reject: (e: Error) => void };
  let queue: Pending[] = [];
  let flushing = false;
  let failed: Error | null = null;
  let closed = false;
  let flushWaiters: Array<() => void> = [];
  const listeners: Array<(records: Array<Chained<B>>) => void> = [];

  async function rotate(): Promise<void> {
    await handle.close();
    file = path.join(dir, segmentName(seq + 1));
    handle = await fsp.open(file, 'a');
    size = 0;
    await syncDir(dir);
  }

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        if (failed) {
          for (const p of batch) p.reject(failed);
          continue;
        }
        const startSeq = seq;
        const startPrev = prev;
        const records: Array<Chained<B>> = [];
        const lines: string[] = [];
        const ts = now().toISOString();
        for (const p of batch) {
          const record = { seq: seq + 1, ts, prev, ...p.body } as Chained<B>;
          const line = JSON.stringify(record);
          seq = record.seq;
          prev = lineHash(line);
          records.push(record);
          lines.push(line);
        }
        const data = Buffer.from(lines.join('\n') + '\n', 'utf8');
        try {
          if (size > 0 && size + data.length > segmentBytes) await rotate();
          await handle.write(data);
          await handle.datasync();
          size += data.length;
        } catch (err) {
          // Undo the partial write so the chain stays intact; if even that fails, stop accepting.
          seq = startSeq;
          prev = startPrev;
          const error = unavailable(`${name} write failed: ${(err as Error).message}`);
          try {
            await handle.truncate(size);
            await handle.datasync();
          } catch (truncErr) {
            failed = unavailable(`${name} is unusable until restart: ${(truncErr as Error).message}`);
            opts.log.error({ event: `${name}.failed`, err: truncErr }, `${name} could not roll back a failed write`);
          }
          opts.log.error({ event: `${name}.write_failed`, err, records: batch.length }, `${name} write failed; ${opts.onWriteFailure}`);
          for (const p of batch) p.reject(error);
          continue;
        }
        batch.forEach((p, i) => p.resolve(records[i]!));
        for (const listener of listeners) {
          try {
            listener(records);
          } catch (err) {
            opts.log.error({ event: `${name}.listener_failed`, err }, `${name} commit listener threw`);
          }
        }
      }
    } finally {
      flushing = false;
      const waiters = flushWaiters;
      flushWaiters = [];
      for (const w of waiters) w();
    }
  }

  return {
    append(body) {
      if (closed) return Promise.reject(unavailable(`${name} is closed`));
      return new Promise<Chained<B>>((resolve, reject) => {
        queue.push({ body, resolve, reject });
        if (!flushing) void flush();
      });
    },
    onCommit(listener) {
      listeners.push(listener);
    },
    async *read(fromSeq = 1, toSeq = seq) {
      for await (const { record } of readLines<Chained<B>>(dir, fromSeq, toSeq)) yield record;
    },
    lastSeq: () => seq,
    flushed() {
      // flush() drains the queue before it stops, so its end covers every append made so far.
      if (!flushing && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => flushWaiters.push(resolve));
    },
    async close() {
      closed = true;
      while (flushing || queue.length > 0) await new Promise((r) => setTimeout(r, 5));
      await handle.close();
    },
  };
}
