/**
 * worker_threads entry for the parse pool (see parse-pool.ts).
 *
 * Receives either one message `{ id, raw, opts }` and answers `{ id, result }` or `{ id, error }`,
 * or a batch `{ batch: [{ id, raw }, ...], opts }` and answers `{ batch: [{ id, result } | { id, error }, ...] }`
 * once every message of the batch is parsed. Messages and batches are parsed concurrently (mailparser
 * is asynchronous: several messages in flight keep the event loop busy instead of idling between
 * its setImmediate steps). Posts `{ ready: true }` once loaded.
 */
import { parentPort } from 'node:worker_threads';
import { parseMail, type ParseOptions } from './parse.js';
import type { ParsedMail } from './types.js';

export interface ParseRequest {
  id: number;
  raw: Uint8Array;
  opts: ParseOptions;
}

export interface ParseBatchRequest {
  batch: { id: number; raw: Uint8Array }[];
  opts: ParseOptions;
}

export type ParseReply = { id: number; result: ParsedMail } | { id: number; error: string };

export interface ParseBatchReply {
  batch: ParseReply[];
}

async function one(id: number, raw: Uint8Array, opts: ParseOptions): Promise<ParseReply> {
  try {
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    return { id, result: await parseMail(buf, opts) };
  } catch (err) {
    return { id, error: err instanceof Error ? err.message : String(err) };
  }
}

const port = parentPort;
if (port) {
  port.on('message', (msg: ParseRequest | ParseBatchRequest) => {
    if ('batch' in msg) {
      void Promise.all(msg.batch.map((m) => one(m.id, m.raw, msg.opts))).then((replies) => {
        const reply: ParseBatchReply = { batch: replies };
        port.postMessage(reply);
      });
    } else {
      void one(msg.id, msg.raw, msg.opts).then((reply) => port.postMessage(reply));
    }
  });
  port.postMessage({ ready: true });
}
