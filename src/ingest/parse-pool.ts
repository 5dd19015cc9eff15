import type { Worker } from 'node:worker_threads';
import { fallbackParse, parseMail, type ParseOptions } from './parse.js';
import type { ParseBatchReply, ParseReply } from './parse-worker.js';
import type { ParsedMail } from './types.js';
import { startModuleWorker } from './worker-start.js';

export interface ParsePoolOptions {
  /** Worker threads; 0 parses on the calling thread. */
  size: number;
  /**
   * Per message, from the moment it is handed to a worker; then the worker is replaced and the
   * message gets the fallback result. 0: no timeout. With size 0 the message gets the fallback
   * result after this long, but the parse itself cannot be stopped.
   */
  timeoutMs: number;
  headerNames: string[];
  maxTextChars: number;
  /**
   * Messages handed to one worker at a time (default 16). mailparser is asynchronous and yields to
   * the event loop between chunks; several messages in flight per worker keep it busy and amortise
   * the messaging cost, since what is queued in the same tick goes over in one postMessage.
   */
  maxInFlight?: number;
  /**
   * V8 young generation of each worker, MB (resourceLimits.maxYoungGenerationSizeMb; 0: V8's
   * default, 3 x 16 MB semi-spaces on 64-bit). mailparser allocates many short-lived objects; at
   * 192 (64 MB semi-spaces) scavenges are rarer and parsing took ~25-35% less CPU in our
   * measurements, for ~50 MB more resident memory per worker under load. Default 192.
   */
  youngGenerationMb?: number;
  /**
   * Tests only: starts a worker in place of parse-worker (same message protocol).
   */
  startWorker?: () => Worker;
}

export interface ParsePool {
  /**
   * Parses one message. Never rejects while the pool is open: a timeout or a crashed worker gives
   * the fallback result (status 'partial', defect 'parse-timeout' / 'parse-crash'). The buffer is
   * copied before it is sent; do not modify it until the promise settles (the fallback reads it).
   */
  parse(raw: Buffer): Promise<ParsedMail>;
  /** Parses several messages; results in the same order. Same as Promise.all over parse(). */
  parseMany(raws: Buffer[]): Promise<ParsedMail[]>;
  /** Lets queued and in-flight messages finish, then stops the workers. parse() afterwards rejects. */
  close(): Promise<void>;
}

interface Job {
  id: number;
  raw: Buffer;
  resolve: (mail: ParsedMail) => void;
  timer: NodeJS.Timeout | null;
  /** Set after a worker died or timed out with this message among others: it runs alone next time. */
  isolate: boolean;
  slot: Slot | null;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  dead: boolean;
  inflight: Map<number, Job>;
  /** Runs an isolated job: gets nothing else until it is done. */
  solo: boolean;
  /** Takes no new jobs so that it empties for an isolated job. */
  reserved: boolean;
}

/** Consecutive workers that die before loading: then the pool parses on the calling thread. */
const MAX_START_FAILURES = 3;

/**
 * Starts a parse worker. Only the young generation is set: old-generation limits can abort the
 * whole process when a worker reaches them (nodejs/node#47224), so they are left to Node.
 */
function startWorker(youngGenerationMb: number): Worker {
  return startModuleWorker('parse-worker', youngGenerationMb > 0 ? { resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } } : {});
}

function withTimeout(p: Promise<ParsedMail>, ms: number, onTimeout: () => ParsedMail): Promise<ParsedMail> {
  if (!(ms > 0)) return p;
  return new Promise<ParsedMail>((resolve) => {
    const timer = setTimeout(() => resolve(onTimeout()), ms);
    void p.then((mail) => {
      clearTimeout(timer);
      resolve(mail);
    });
  });
}

export function createParsePool(opts: ParsePoolOptions): ParsePool {
  const parseOpts: ParseOptions = { headerNames: opts.headerNames.map((n) => n.toLowerCase()), maxTextChars: opts.maxTextChars };
  const size = Math.max(0, Math.floor(opts.size));
  const maxInFlight = Math.max(1, Math.floor(opts.maxInFlight ?? 16));
  const youngGenerationMb = Math.max(0, Math.floor(opts.youngGenerationMb ?? 192));
  // setTimeout fires at once for delays past 2^31-1 ms; 0 (or not finite) means no timeout.
  const timeoutMs = Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0 ? Math.min(opts.timeoutMs, 2 ** 31 - 1) : 0;
  let closed = false;
  let closing: Promise<void> | null = null;

  const inThread = (raw: Buffer): Promise<ParsedMail> =>
    withTimeout(parseMail(raw, parseOpts), timeoutMs, () => fallbackParse(raw, parseOpts, ['parse-timeout']));

  if (size === 0) {
    let pending = 0;
    let drained: (() => void) | null = null;
    const local: ParsePool = {
      parse(raw) {
        if (closed) return Promise.reject(new Error('parse pool is closed'));
        pending++;
        return inThread(raw).finally(() => {
          if (--pending === 0 && drained) drained();
        });
      },
      parseMany(raws) {
        return Promise.all(raws.map((r) => local.parse(r)));
      },
      close() {
        closed = true;
        if (pending === 0) return Promise.resolve();
        closing ??= new Promise<void>((resolve) => (drained = resolve));
        return closing;
      },
    };
    return local;
  }

  const slots: Slot[] = [];
  const queue: Job[] = [];
  const isolatedQueue: Job[] = [];
  let nextId = 1;
  let pending = 0;
  let startFailures = 0;
  let broken = false;
  let pumpScheduled = false;
  let drained: (() => void) | null = null;

  function finish(job: Job, mail: ParsedMail): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
    job.slot = null;
    job.resolve(mail);
    if (--pending === 0 && drained) drained();
  }

  function updateRef(slot: Slot): void {
    if (slot.dead) return;
    if (slot.inflight.size > 0 || (!slot.ready && pending > 0)) slot.worker.ref();
    else slot.worker.unref();
  }

  function spawn(): void {
    let worker: Worker;
    try {
      worker = opts.startWorker ? opts.startWorker() : startWorker(youngGenerationMb);
    } catch (err) {
      // Cannot even construct a worker (e.g. tsx missing for .ts sources): retrying will not help.
      startFailures = MAX_START_FAILURES - 1;
      startFailed(err);
      schedulePump();
      return;
    }
    const slot: Slot = { worker, ready: false, dead: false, inflight: new Map(), solo: false, reserved: false };
    slots.push(slot);
    updateRef(slot);
    worker.on('message', (msg: { ready: true } | ParseReply | ParseBatchReply) => {
      if (slot.dead) return;
      if ('ready' in msg) {
        slot.ready = true;
        startFailures = 0;
        updateRef(slot);
        schedulePump();
        return;
      }
      if ('batch' in msg) for (const r of msg.batch) onReply(slot, r);
      else onReply(slot, msg);
      if (slot.inflight.size === 0) slot.solo = false;
      updateRef(slot);
      schedulePump();
    });
    worker.on('error', (err) => slotDied(slot, 'parse-crash', err));
    worker.on('exit', (code) => slotDied(slot, 'parse-crash', new Error(`parse worker exited with code ${code}`)));
  }

  function startFailed(err: unknown): void {
    startFailures++;
    if (startFailures >= MAX_START_FAILURES && !broken) {
      broken = true;
      process.emitWarning(
        `parse pool: workers fail to start (${err instanceof Error ? err.message : String(err)}); parsing on the calling thread`,
        { code: 'SPINDLE_PARSE_POOL' },
      );
    }
  }

  function onReply(slot: Slot, reply: ParseReply): void {
    const job = slot.inflight.get(reply.id);
    if (!job) return; // already settled (timed out)
    slot.inflight.delete(reply.id);
    finish(job, 'result' in reply ? reply.result : fallbackParse(job.raw, parseOpts, ['parse-error']));
  }

  /** A worker crashed, exited or is being killed for a timeout. */
  function slotDied(slot: Slot, defect: 'parse-crash' | 'parse-timeout', err?: unknown): void {
    if (slot.dead) return;
    slot.dead = true;
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    const jobs = [...slot.inflight.values()];
    slot.inflight.clear();
    void slot.worker.terminate().catch(() => undefined);
    if (!slot.ready) startFailed(err);
    for (const job of jobs) {
      if (job.timer) clearTimeout(job.timer);
      job.timer = null;
      job.slot = null;
    }
    if (jobs.length === 1 && jobs[0]) {
      // Alone on its worker: it is the cause.
      finish(jobs[0], fallbackParse(jobs[0].raw, parseOpts, [defect]));
    } else if (jobs.length > 1) {
      // Cannot tell which one did it: each runs again, alone; the culprit then fails by itself.
      for (const job of jobs) job.isolate = true;
      isolatedQueue.unshift(...jobs);
    }
    if (!closed || pending > 0) {
      if (!broken) spawn();
    }
    schedulePump();
  }

  function onTimeout(job: Job): void {
    job.timer = null;
    const slot = job.slot;
    if (!slot) return;
    slotDied(slot, 'parse-timeout');
  }

  function send(slot: Slot, jobs: Job[]): void {
    const transfer: ArrayBuffer[] = [];
    const items = jobs.map((job) => {
      // A copy of our own to transfer (the caller keeps its buffer); allocUnsafeSlow: not from
      // Buffer's shared pool, so its ArrayBuffer holds exactly these bytes, and not zero-filled.
      const copy = Buffer.allocUnsafeSlow(job.raw.byteLength);
      copy.set(job.raw);
      transfer.push(copy.buffer as ArrayBuffer);
      slot.inflight.set(job.id, job);
      job.slot = slot;
      if (timeoutMs > 0) job.timer = setTimeout(() => onTimeout(job), timeoutMs);
      return { id: job.id, raw: copy };
    });
    try {
      if (items.length === 1 && items[0]) slot.worker.postMessage({ ...items[0], opts: parseOpts }, transfer);
      else slot.worker.postMessage({ batch: items, opts: parseOpts }, transfer);
    } catch {
      for (const job of jobs) {
        slot.inflight.delete(job.id);
        finish(job, fallbackParse(job.raw, parseOpts, ['parse-error']));
      }
    }
    updateRef(slot);
  }

  function runInThread(job: Job): void {
    void inThread(job.raw).then((mail) => finish(job, mail));
  }

  function pump(): void {
    pumpScheduled = false;
    if (broken) {
      for (const job of isolatedQueue.splice(0)) runInThread(job);
      for (const job of queue.splice(0)) runInThread(job);
      return;
    }
    // Isolated jobs first, each on an otherwise empty worker. While one waits, the least busy
    // worker is reserved (gets nothing new) so that it empties.
    let reserved = slots.find((s) => s.reserved) ?? null;
    while (isolatedQueue.length > 0) {
      const free = slots.find((s) => s.ready && !s.dead && s.inflight.size === 0);
      if (!free) break;
      const job = isolatedQueue.shift() as Job;
      free.solo = true;
      send(free, [job]);
    }
    if (isolatedQueue.length === 0) {
      if (reserved) reserved.reserved = false;
    } else if (!reserved || reserved.solo || reserved.dead) {
      if (reserved) reserved.reserved = false;
      reserved = null;
      for (const s of slots) if (s.ready && !s.solo && (!reserved || s.inflight.size < reserved.inflight.size)) reserved = s;
      if (reserved) reserved.reserved = true;
    }
    for (const slot of slots) {
      if (queue.length === 0) break;
      if (!slot.ready || slot.dead || slot.solo || slot.reserved) continue;
      const room = maxInFlight - slot.inflight.size;
      if (room <= 0) continue;
      send(slot, queue.splice(0, room));
    }
  }

  function schedulePump(): void {
    if (pumpScheduled) return;
    pumpScheduled = true;
    // Parse calls made in the same tick are sent together (one postMessage per worker).
    queueMicrotask(pump);
  }

  for (let i = 0; i < size; i++) spawn();

  const pool: ParsePool = {
    parse(raw) {
      if (closed) return Promise.reject(new Error('parse pool is closed'));
      return new Promise<ParsedMail>((resolve) => {
        pending++;
        queue.push({ id: nextId++, raw, resolve, timer: null, isolate: false, slot: null });
        for (const s of slots) updateRef(s);
        schedulePump();
      });
    },
    parseMany(raws) {
      return Promise.all(raws.map((r) => pool.parse(r)));
    },
    close() {
      if (closing) return closing;
      closed = true;
      closing = (async () => {
        if (pending > 0) await new Promise<void>((resolve) => (drained = resolve));
        const all = slots.splice(0);
        for (const s of all) s.dead = true;
        await Promise.all(all.map((s) => s.worker.terminate().catch(() => undefined)));
      })();
      return closing;
    },
  };
  return pool;
}

/** Text kept per message for the index; larger bodies are cut for the index only, never in the store. */
const INDEX_TEXT_CHARS = 512 * 1024;

/** The parse pool the indexer uses, from the settings: one definition for `serve` and `rebuild`. */
export function createIndexParsePool(config: { parseWorkers: number; trustedEnvelopeHeader: string }): ParsePool {
  return createParsePool({ size: config.parseWorkers, timeoutMs: PARSE_TIMEOUT_MS, ...indexParseOptions(config) });
}

/** A message whose parse takes longer gets the fallback result (defect parse-timeout). */
export const PARSE_TIMEOUT_MS = 30_000;

/** What the index asks of the parser, from the settings. */
export function indexParseOptions(config: { trustedEnvelopeHeader: string }): ParseOptions {
  return { maxTextChars: INDEX_TEXT_CHARS, headerNames: config.trustedEnvelopeHeader ? [config.trustedEnvelopeHeader.toLowerCase()] : [] };
}
