import { createHash } from 'node:crypto';
import { BlobNotFoundError, SHA256_HEX, type BlobStore } from '../store/blob-store.js';
import type { BatchRead, BlobThreads, ThreadRead } from './blob-thread.js';
import type { ExportItem } from './manifest.js';

/** The bytes read are not the archived message: an export never ships them. */
export class IntegrityError extends Error {
  readonly code = 'integrity';
}

export interface ReadOptions {
  /** Reader threads for small messages (export/blob-thread.ts); without them, store.get(). */
  threads?: BlobThreads | null;
  /** Messages up to this size are read whole (and ahead); larger ones are streamed in their turn. */
  wholeLimit?: number;
  /** Messages per batch handed to a thread. */
  batchCount?: number;
  /** Bytes read ahead at most (whole messages waiting to be written). */
  aheadBytes?: number;
}

/** Batches and large messages queued at most, whatever their size. */
const MAX_SLOTS = 64;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A command beside a live server reads blob files that the server writes just behind its 250
 * (store/fs-store.ts): a message indexed a moment ago may not have its file yet. A few short
 * retries cover that; a blob that stays missing is an error.
 */
async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof BlobNotFoundError) || attempt >= 5) throw err;
      await sleep(50 * 2 ** attempt);
    }
  }
}

function mismatch(item: ExportItem, size: number, sha256: string): IntegrityError {
  return new IntegrityError(`message ${item.entry.id}: blob ${item.entry.sha256} read back as ${size} bytes with sha256 ${sha256}; ` +
    'the archive is damaged (run spindle verify)');
}

function check(item: ExportItem, data: Buffer): Buffer {
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (data.length !== item.entry.size || sha256 !== item.entry.sha256) throw mismatch(item, data.length, sha256);
  return data;
}

/** Through the store (its cache and journal included), checked. */
const readWhole = async (store: BlobStore, item: ExportItem): Promise<Buffer> => check(item, await withRetry(() => store.get(item.entry.sha256)));

/** A large message, streamed; hashed on the way and checked when it ends. */
async function* verifiedStream(store: BlobStore, item: ExportItem): AsyncGenerator<Buffer> {
  await withRetry(async () => {
    if (!(await store.has(item.entry.sha256))) throw new BlobNotFoundError(item.entry.sha256);
  });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of store.getStream(item.entry.sha256) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  const sha256 = hash.digest('hex');
  if (size !== item.entry.size || sha256 !== item.entry.sha256) throw mismatch(item, size, sha256);
}

/** What a thread returned, as the message's bytes; a blob it could not find is read through the store. */
async function fromThread(store: BlobStore, item: ExportItem, r: ThreadRead): Promise<Buffer> {
  if ('data' in r) return r.data;
  if ('missing' in r) return readWhole(store, item);
  if ('mismatch' in r) throw mismatch(item, r.mismatch.size, r.mismatch.sha256);
  throw new Error(`message ${item.entry.id}: reading blob ${item.entry.sha256} failed: ${r.error}`);
}

interface Slot {
  items: ExportItem[];
  /** Whole messages in a batch; null: one large message, streamed when its turn comes. */
  data: Promise<BatchRead> | null;
  bytes: number;
}

/**
 * One message read: whole, or (large) a checked stream to be consumed before the next is asked
 * for. A whole body may be a view of shared memory that is reused once the consumer asks for the
 * next batch: whatever keeps bytes longer copies them.
 */
export interface ReadMessage {
  item: ExportItem;
  body: Buffer | AsyncIterable<Buffer>;
}

/**
 * Reads the messages in order, yielding a batch at a time (one async step per batch, not per
 * message). Small messages are read whole, in batches, ahead of the writer: on reader threads
 * when given (read, gunzip and sha256 run beside the main thread, which quotes, hashes and
 * writes), else through store.get(). Read-ahead is bounded in bytes and batches, and a large
 * message is streamed only when its turn comes, so memory stays flat however long the export is.
 * Every message is checked against its sha256 and size before (whole) or as (streamed) it is
 * written.
 */
export async function* readMessages(store: BlobStore, items: Iterable<ExportItem>, opts: ReadOptions = {}): AsyncGenerator<ReadMessage[]> {
  const wholeLimit = opts.wholeLimit ?? 1024 * 1024;
  const batchCount = opts.batchCount ?? 64;
  // A few batches are enough to keep a reader thread busy; more would only keep messages alive
  // long enough for V8 to move them to its old generation, which it collects far less often.
  const aheadBytes = opts.aheadBytes ?? 2 * 1024 * 1024;
  const threads = opts.threads ?? null;
  const source = items[Symbol.iterator]();
  const queue: Slot[] = [];
  let queuedBytes = 0;
  let carried: ExportItem | null = null;
  let exhausted = false;

  const startBatch = (batch: ExportItem[], bytes: number) => {
    const data: Promise<BatchRead> = threads
      ? threads.read(batch.map((i) => ({ sha256: i.entry.sha256, size: i.entry.size, stored: i.stored })))
      : Promise.all(batch.map((i) => readWhole(store, i))).then((bufs) => ({ results: bufs.map((data) => ({ data })), release: () => undefined }));
    // Observed when its turn comes; this only keeps a read that fails early from being reported as unhandled.
    data.catch(() => undefined);
    queue.push({ items: batch, data, bytes });
    queuedBytes += bytes;
  };
  const fill = () => {
    while (!exhausted && (queue.length === 0 || (queuedBytes < aheadBytes && queue.length < MAX_SLOTS))) {
      const batch: ExportItem[] = [];
      let bytes = 0;
      while (batch.length < batchCount && bytes < aheadBytes / 4) {
        const item: ExportItem | undefined = carried ?? source.next().value;
        carried = null;
        if (item === undefined) {
          exhausted = true;
          break;
        }
        if (!SHA256_HEX.test(item.entry.sha256)) throw new IntegrityError(`message ${item.entry.id}: ${JSON.stringify(item.entry.sha256)} is not a blob name`);
        if (item.entry.size > wholeLimit) {
          carried = batch.length > 0 ? item : null;
          if (batch.length === 0) queue.push({ items: [item], data: null, bytes: 0 });
          break;
        }
        batch.push(item);
        bytes += item.entry.size;
      }
      if (batch.length > 0) startBatch(batch, bytes);
    }
  };

  fill();
  while (queue.length > 0) {
    const slot = queue.shift()!;
    if (slot.data === null) {
      fill();
      yield [{ item: slot.items[0]!, body: verifiedStream(store, slot.items[0]!) }];
      continue;
    }
    const read = await slot.data;
    queuedBytes -= slot.bytes;
    fill();
    try {
      const batch: ReadMessage[] = [];
      for (const [i, item] of slot.items.entries()) batch.push({ item, body: await fromThread(store, item, read.results[i]!) });
      yield batch;
    } finally {
      // The consumer asks for the next batch only once this one is written (copied out).
      read.release();
    }
  }
}
