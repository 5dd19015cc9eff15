import fsp from 'node:fs/promises';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir as syncDir } from '../store/dir-sync.js';
import { type LedgerBody, type LedgerRecord } from './records.js';
import { lineHash, listSegments, readLines, recoverTail, segmentName } from './segments.js';

export interface Ledger {
  /** Appends a record; resolves once it is on disk (fsync), shared with concurrent appends. */
  append(body: LedgerBody): Promise<LedgerRecord>;
  /** Called after every commit with the committed records, in seq order. */
  onCommit(listener: (records: LedgerRecord[]) => void): void;
  /** Committed records with fromSeq <= seq <= toSeq (default: the last committed), from disk. */
  read(fromSeq?: number, toSeq?: number): AsyncGenerator<LedgerRecord>;
  lastSeq(): number;
  close(): Promise<void>;
}

export class LedgerUnavailableError extends Error {
  readonly code = 'ledger_unavailable';
}

export interface LedgerOptions {
  dir: string;
  log: Logger;
  /** Start a new segment past this size. */
  segmentBytes?: number;
  now?: () => Date;
}

/**
 * The append-only, hash-chained ledger. One writer; appends from concurrent SMTP sessions are
 * group-committed: while one write+fsync is in flight the next batch gathers, so the number of
 * fsyncs per second stays bounded however many messages arrive.
 */
export async function openLedger(opts: LedgerOptions): Promise<Ledger> {
  const dir = path.resolve(opts.dir);
  const segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
  const now = opts.now ?? (() => new Date());
  await fsp.mkdir(dir, { recursive: true });
  const tail = await recoverTail(dir);
  if (tail.torn) opts.log.warn({ event: 'ledger.torn_tail', file: tail.torn }, 'incomplete last ledger record moved aside (it was never acknowledged)');
  let seq = tail.lastSeq;
  let prev = tail.lastHash;

  let current = listSegments(dir).at(-1);
  let file = current ? current.file : path.join(dir, segmentName(seq + 1));
  let handle = await fsp.open(file, 'a');
  let size = (await handle.stat()).size;
  if (!current) await syncDir(dir);

  type Pending = { body: LedgerBody; resolve: (r: LedgerRecord) => void; reject: (e: Error) => void };
  let queue: Pending[] = [];
  let flushing = false;
  let failed: Error | null = null;
  let closed = false;
  const listeners: Array<(records: LedgerRecord[]) => void> = [];

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
        const records: LedgerRecord[] = [];
        const lines: string[] = [];
        const ts = now().toISOString();
        for (const p of batch) {
          const record = { seq: seq + 1, ts, prev, ...p.body } as LedgerRecord;
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
          const error = new LedgerUnavailableError(`ledger write failed: ${(err as Error).message}`);
          try {
            await handle.truncate(size);
            await handle.datasync();
          } catch (truncErr) {
            failed = new LedgerUnavailableError(`ledger is unusable until restart: ${(truncErr as Error).message}`);
            opts.log.error({ event: 'ledger.failed', err: truncErr }, 'ledger could not roll back a failed write');
          }
          opts.log.error({ event: 'ledger.write_failed', err, records: batch.length }, 'ledger write failed; deliveries answered 4xx');
          for (const p of batch) p.reject(error);
          continue;
        }
        batch.forEach((p, i) => p.resolve(records[i]!));
        for (const listener of listeners) {
          try {
            listener(records);
          } catch (err) {
            opts.log.error({ event: 'ledger.listener_failed', err }, 'ledger commit listener threw');
          }
        }
      }
    } finally {
      flushing = false;
    }
  }

  return {
    append(body) {
      if (closed) return Promise.reject(new LedgerUnavailableError('ledger is closed'));
      return new Promise<LedgerRecord>((resolve, reject) => {
        queue.push({ body, resolve, reject });
        if (!flushing) void flush();
      });
    },
    onCommit(listener) {
      listeners.push(listener);
    },
    async *read(fromSeq = 1, toSeq = seq) {
      for await (const { record } of readLines(dir, fromSeq, toSeq)) yield record;
    },
    lastSeq: () => seq,
    async close() {
      closed = true;
      while (flushing || queue.length > 0) await new Promise((r) => setTimeout(r, 5));
      await handle.close();
    },
  };
}
