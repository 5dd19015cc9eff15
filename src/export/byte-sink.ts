import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import type { Writable } from 'node:stream';

/**
 * Where an export's bytes go: a file (CLI) or an HTTP response (API). Writes are coalesced into
 * large chunks (an mbox is made of many small pieces: a From line, a few slices of each message),
 * so a file gets few write calls and a chunked HTTP response few chunk headers. Every byte is
 * hashed on the way out: the sha256 of the whole output is the export's digest.
 */
export interface ByteSink {
  /**
   * Copies the chunk and returns undefined, or, when that fills a chunk, returns a promise that
   * resolves when the output is ready for more (backpressure). Most writes are the former, so a
   * small piece costs no promise. The sink keeps no reference to the chunk.
   */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Writes text as UTF-8, straight into the pending chunk when it fits (no intermediate buffer). */
  writeText(text: string): Promise<void> | undefined;
  /** Bytes written so far. */
  readonly bytes: number;
  /** sha256 (hex) of everything written; only after close(). */
  digest(): string;
  /** Writes what is pending and ends the output (a file is fsynced and closed). */
  close(): Promise<void>;
  /** Gives up: the output is ended without flushing. Never throws. */
  destroy(): Promise<void>;
}

const CHUNK = 256 * 1024;

/** Runs `next` after `first` if that is a promise, else right away: keeps buffered writes free of promises. */
export function andThen(first: Promise<void> | undefined, next: () => Promise<void> | undefined): Promise<void> | undefined {
  return first ? first.then(next) : next();
}

/**
 * A file's bytes in chunks of one reused buffer: each chunk is valid until the next is asked for,
 * which suits a ByteSink (it copies). Reading a large manifest or central directory back this way
 * allocates nothing per chunk (new buffers would pile up as garbage V8 collects late).
 */
export async function* readChunks(file: string | fsp.FileHandle, chunkSize = CHUNK): AsyncGenerator<Buffer> {
  const handle = typeof file === 'string' ? await fsp.open(file, 'r') : file;
  const buf = Buffer.allocUnsafe(chunkSize);
  try {
    for (let position = 0; ;) {
      const { bytesRead } = await handle.read(buf, 0, chunkSize, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    if (typeof file === 'string') await handle.close();
  }
}

/** Writes the chunks in order; undefined when they were all only buffered (see ByteSink.write). */
export function writeAll(sink: ByteSink, chunks: Buffer[], from = 0): Promise<void> | undefined {
  for (let i = from; i < chunks.length; i++) {
    const p = sink.write(chunks[i]!);
    if (p) return p.then(() => writeAll(sink, chunks, i + 1));
  }
  return undefined;
}

/** The output behind the coalescing: `end` gets the digest of everything written. */
interface RawOutput {
  /** A buffer of CHUNK bytes to fill next: new, or one whose write has completed. */
  chunk(): Buffer;
  write(buf: Buffer): Promise<void>;
  end(digest: string): Promise<void>;
  destroy(): Promise<void>;
}

function coalescing(out: RawOutput): ByteSink {
  const hash = createHash('sha256');
  let pending = out.chunk();
  let used = 0;
  let bytes = 0;
  let digest: string | null = null;
  const flush = async (buf: Buffer) => {
    hash.update(buf);
    await out.write(buf);
  };
  const flushPending = async () => {
    if (used === 0) return;
    const full = pending.subarray(0, used);
    // The output may still be writing the full one (a file) or keep it (a stream's queue).
    pending = out.chunk();
    used = 0;
    await flush(full);
  };
  const sink: ByteSink = {
    get bytes() {
      return bytes;
    },
    writeText(text) {
      // A UTF-16 code unit is at most 3 bytes of UTF-8.
      if (used + text.length * 3 > CHUNK) return sink.write(Buffer.from(text, 'utf8'));
      const n = pending.write(text, used, 'utf8');
      used += n;
      bytes += n;
      return undefined;
    },
    write(chunk) {
      bytes += chunk.length;
      if (used + chunk.length <= CHUNK) {
        chunk.copy(pending, used);
        used += chunk.length;
        return undefined;
      }
      // Always copied, never passed on by reference: the caller's buffer may be reused (reader ring).
      return (async () => {
        for (let off = 0; off < chunk.length;) {
          const n = Math.min(CHUNK - used, chunk.length - off);
          chunk.copy(pending, used, off, off + n);
          used += n;
          off += n;
          if (used === CHUNK) await flushPending();
        }
      })();
    },
    digest() {
      if (digest === null) throw new Error('digest() before close()');
      return digest;
    },
    async close() {
      await flushPending();
      const sum = hash.digest('hex');
      await out.end(sum);
      digest = sum;
    },
    destroy: () => out.destroy().catch(() => undefined),
  };
  return sink;
}

/** Chunks being written to a file at once: the export goes on filling the next while they land. */
const FILE_WRITES_IN_FLIGHT = 4;

/** A new file (any old one is replaced), fsynced before close() resolves. */
export async function openFileSink(file: string, opts: { sync?: boolean } = {}): Promise<ByteSink> {
  const handle = await fsp.open(file, 'w', 0o640);
  let closed = false;
  let position = 0;
  let failure: unknown = null;
  const inFlight: Array<Promise<void>> = [];
  /** Chunks whose writes have completed, to be filled again instead of allocating new ones. */
  const free: Buffer[] = [];
  const ours = new WeakSet<ArrayBufferLike>();
  const allocate = () => {
    const b = Buffer.allocUnsafeSlow(CHUNK);
    ours.add(b.buffer);
    return b;
  };
  const writeAt = async (buf: Buffer, at: number) => {
    let done = 0;
    while (done < buf.length) done += (await handle.write(buf, done, buf.length - done, at + done)).bytesWritten;
    // Only chunks this sink allocated are refilled: a passed-through slice belongs to a message.
    if (ours.has(buf.buffer)) free.push(Buffer.from(buf.buffer, 0, CHUNK));
  };
  const settle = async () => {
    await Promise.all(inFlight.splice(0));
    if (failure) throw failure;
  };
  return coalescing({
    chunk: () => free.pop() ?? allocate(),
    async write(buf) {
      if (failure) throw failure;
      // Positioned writes may complete in any order; each knows where it goes.
      const p: Promise<void> = writeAt(buf, position).catch((err: unknown) => {
        failure ??= err;
      });
      position += buf.length;
      inFlight.push(p);
      if (inFlight.length >= FILE_WRITES_IN_FLIGHT) await inFlight.shift();
      if (failure) throw failure;
    },
    async end() {
      await settle();
      if (opts.sync ?? true) await handle.sync();
      closed = true;
      await handle.close();
    },
    async destroy() {
      await Promise.allSettled(inFlight.splice(0));
      if (!closed) await handle.close();
      closed = true;
    },
  });
}

/**
 * A stream (an HTTP response body). `beforeEnd` runs after the last byte is written and before
 * the stream is ended. A write waits for 'drain' when the stream's buffer is full;
 * if the stream fails or is closed early (the client went away) the pending and every later write
 * rejects, which stops the export.
 */
export function streamSink(stream: Writable, opts: { beforeEnd?: (digest: string) => Promise<void> } = {}): ByteSink {
  let failure: Error | null = null;
  let ending = false;
  const fail = (err: Error) => {
    failure ??= err;
  };
  stream.on('error', fail);
  stream.on('close', () => {
    if (!ending || !stream.writableFinished) fail(new Error('the output was closed before the export finished'));
  });
  const whenWritable = () =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        stream.off('drain', onDrain);
        stream.off('close', onClose);
        stream.off('error', onError);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(failure ?? new Error('the output was closed before the export finished'));
      const onError = (err: Error) => done(err);
      stream.on('drain', onDrain);
      stream.on('close', onClose);
      stream.on('error', onError);
    });
  return coalescing({
    chunk: () => Buffer.allocUnsafe(CHUNK),
    async write(buf) {
      if (failure) throw failure;
      if (!stream.write(buf)) await whenWritable();
    },
    async end(digest) {
      if (failure) throw failure;
      // E.g. the API's closing audit entry: if it cannot be written, the download stays incomplete.
      await opts.beforeEnd?.(digest);
      if (failure) throw failure;
      ending = true;
      await new Promise<void>((resolve, reject) => {
        stream.end((err?: Error | null) => (err ? reject(err) : resolve()));
      });
    },
    async destroy() {
      ending = true;
      stream.destroy();
    },
  });
}
