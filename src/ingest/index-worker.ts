/**
 * worker_threads entry of the index thread (see index-thread.ts): its own connection to
 * spindle.db, the archive writer, and the parser. Receives `{ id, items: [{ record, raw, fallback? }] }`,
 * answers `{ id, applied }` or `{ id, error }`. Posts `{ ready: true }` once the database is open.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createArchiveWriter, type IndexItem } from '../db/archive-writer.js';
import { openDatabase } from '../db/database.js';
import { createArchiveAddressMatcher } from '../journal/archive-address.js';
import type { LedgerRecord } from '../ledger/records.js';
import { toIndexItem } from './index-sink.js';
import { fallbackParse } from './parse.js';
import { createParsePool, indexParseOptions, PARSE_TIMEOUT_MS } from './parse-pool.js';

export interface IndexWorkerData {
  dbFile: string;
  archiveAddresses: string[];
  trustedEnvelopeHeader: string;
  /** Parse workers of the index thread's own; 0 parses on the index thread itself. */
  parseWorkers: number;
  /** Tests only: a message whose bytes contain this string makes the thread crash (or hang). */
  faults?: { crashOn?: string; hangOn?: string };
}

/** 'parse-crash' / 'parse-timeout': this message took the index thread down before; skip mailparser. */
export type FallbackDefect = 'parse-crash' | 'parse-timeout';

export interface IndexRequest {
  id: number;
  /** raw: a delivery's bytes; null for records that carry no mail (rules, holds, purges). */
  items: Array<{ record: LedgerRecord; raw: Uint8Array | null; fallback?: FallbackDefect }>;
}

export type IndexReply = { id: number; applied: number } | { id: number; error: string };

const port = parentPort;
if (port) {
  const data = workerData as IndexWorkerData;
  const db = openDatabase({ file: data.dbFile });
  const writer = createArchiveWriter(db);
  const matcher = createArchiveAddressMatcher(data.archiveAddresses);
  const parseOpts = indexParseOptions(data);
  const pool = createParsePool({ size: data.parseWorkers, timeoutMs: PARSE_TIMEOUT_MS, ...parseOpts });
  const trusted = data.trustedEnvelopeHeader.toLowerCase();

  const injectFault = (raw: Buffer): void => {
    const f = data.faults;
    if (f?.crashOn && raw.includes(f.crashOn)) process.exit(70);
    if (f?.hangOn && raw.includes(f.hangOn)) for (;;) { /* a parse that never returns */ }
  };

  port.on('message', (req: IndexRequest) => {
    void (async (): Promise<IndexReply> => {
      try {
        const items = await Promise.all(req.items.map(async ({ record, raw: bytes, fallback }): Promise<IndexItem> => {
          if (record.type !== 'delivery') return { record };
          const raw = bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.alloc(0);
          if (fallback) return toIndexItem(record, await fallbackParse(raw, parseOpts, [fallback]), matcher, trusted);
          injectFault(raw);
          return toIndexItem(record, await pool.parse(raw), matcher, trusted);
        }));
        return { id: req.id, applied: writer.applyBatch(items).length };
      } catch (err) {
        return { id: req.id, error: err instanceof Error ? err.message : String(err) };
      }
    })().then((reply) => port.postMessage(reply));
  });
  port.postMessage({ ready: true });
}
