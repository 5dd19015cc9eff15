/**
 * worker_threads entry for the parse pool (see parse-pool.ts).
 *
 * Receives one message `{ id, raw, opts }` or a batch `{ batch: [{ id, raw }, ...], opts }` and
 * answers each message with `{ id, result }` or `{ id, error }`; answers that are ready at the same
 * time are sent together as `{ batch: [...] }`. Messages are parsed concurrently (mailparser is
 * asynchronous: several messages in flight keep the event loop busy instead of idling between its
 * setImmediate steps). Posts `{ ready: true }` once loaded.
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
  // Each message is answered as soon as it is parsed (a slow one must not hold back the others of
  // its batch), but answers that are ready in the same turn of the event loop go in one postMessage.
  let outbox: ParseReply[] = [];
  const flush = (): void => {
    const replies = outbox;
    outbox = [];
    if (replies.length === 1) port.postMessage(replies[0]);
    else {
      const reply: ParseBatchReply = { batch: replies };
      port.postMessage(reply);
    }
  };
  const answer = (reply: ParseReply): void => {
    if (outbox.push(reply) === 1) setImmediate(flush);
  };
  port.on('message', (msg: ParseRequest | ParseBatchRequest) => {
    if ('batch' in msg) for (const m of msg.batch) void one(m.id, m.raw, msg.opts).then(answer);
    else void one(msg.id, msg.raw, msg.opts).then(answer);
  });
  port.postMessage({ ready: true });
}
