import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BlobNotFoundError, MessageTooLargeError, SHA256_HEX, type BlobStore, type PutResult } from './blob-store.js';
import { createDirSyncer } from './dir-sync.js';
import { createRecentCache } from './recent-cache.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export interface FsBlobStoreOptions {
  /** The blobs/ directory. */
  dir: string;
  /** gzip level; 6 is zlib's default trade-off. */
  level?: number;
  /** Messages up to this size are compressed in one call instead of streamed. */
  bufferLimit?: number;
  /** Bytes of recently stored originals kept in memory, so the indexer need not read them back. */
  recentCacheBytes?: number;
}

/**
 * Blobs on local disk: blobs/ab/cd/<sha256>.eml.gz, gzip of the exact original bytes, so that
 * `zcat` of a blob is the message. Written to blobs/tmp, fsynced, renamed into place, and the
 * directory fsynced: a blob either exists whole under its name or not at all.
 */
export function createFsBlobStore(opts: FsBlobStoreOptions): BlobStore {
  const root = path.resolve(opts.dir);
  const tmpDir = path.join(root, 'tmp');
  const level = opts.level ?? 6;
  const bufferLimit = opts.bufferLimit ?? 1024 * 1024;
  const syncDir = createDirSyncer();
  const recent = createRecentCache(opts.recentCacheBytes ?? 64 * 1024 * 1024);
  fs.mkdirSync(tmpDir, { recursive: true });
  // Anything left in tmp/ is from a crash before rename: never acknowledged, safe to drop.
  for (const name of fs.readdirSync(tmpDir)) fs.rmSync(path.join(tmpDir, name), { force: true });

  const blobPath = (sha: string): string => {
    if (!SHA256_HEX.test(sha)) throw new BlobNotFoundError(sha);
    return path.join(root, sha.slice(0, 2), sha.slice(2, 4), `${sha}.eml.gz`);
  };

  /** mkdir -p that fsyncs the parent of every directory it creates. */
  async function ensureDir(dir: string): Promise<void> {
    const first = await fsp.mkdir(dir, { recursive: true });
    if (first === undefined) return;
    const created: string[] = [];
    for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.push(d);
    await Promise.all(created.map((d) => syncDir(path.dirname(d))));
  }

  async function put(source: AsyncIterable<Buffer>, putOpts: { maxBytes?: number } = {}): Promise<PutResult> {
    const max = putOpts.maxBytes ?? Infinity;
    const hash = createHash('sha256');
    const tmp = path.join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
    let size = 0;
    const head: Buffer[] = [];
    let streaming: { input: PassThrough; done: Promise<void> } | null = null;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > max) throw new MessageTooLargeError(max);
        hash.update(chunk);
        if (streaming) {
          if (!streaming.input.write(chunk)) await new Promise((r) => streaming!.input.once('drain', r));
          continue;
        }
        head.push(chunk);
        if (size > bufferLimit) {
          // Large message: from here on compress as it arrives, in constant memory.
          const input = new PassThrough();
          // flush: fsync before close, so the blob is durable before it is renamed into place.
          const done = pipeline(input, zlib.createGzip({ level }), fs.createWriteStream(tmp, { flags: 'wx', flush: true }));
          streaming = { input, done };
          for (const c of head.splice(0)) input.write(c);
        }
      }
      let original: Buffer | null = null;
      if (streaming) {
        streaming.input.end();
        await streaming.done;
      } else {
        original = Buffer.concat(head, size);
        const compressed = await gzip(original, { level });
        const handle = await fsp.open(tmp, 'wx');
        try {
          await handle.writeFile(compressed);
          await handle.datasync();
        } finally {
          await handle.close();
        }
      }
      const sha256 = hash.digest('hex');
      const final = blobPath(sha256);
      const storedSize = (await fsp.stat(tmp)).size;
      if (original) recent.set(sha256, original);
      const existing = await fsp.stat(final).catch(() => null);
      if (existing) {
        await fsp.rm(tmp, { force: true });
        return { sha256, size, storedSize: existing.size, existed: true };
      }
      await ensureDir(path.dirname(final));
      await fsp.rename(tmp, final);
      await syncDir(path.dirname(final));
      return { sha256, size, storedSize, existed: false };
    } catch (err) {
      streaming?.input.destroy();
      await streaming?.done.catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async function get(sha256: string): Promise<Buffer> {
    const cached = recent.get(sha256);
    if (cached) return cached;
    let compressed: Buffer;
    try {
      compressed = await fsp.readFile(blobPath(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(sha256);
      throw err;
    }
    return gunzip(compressed);
  }

  function getStream(sha256: string): Readable {
    const out = new PassThrough();
    const file = fs.createReadStream(blobPath(sha256));
    file.on('error', (err) => {
      out.destroy((err as NodeJS.ErrnoException).code === 'ENOENT' ? new BlobNotFoundError(sha256) : err);
    });
    pipeline(file, zlib.createGunzip(), out).catch((err) => out.destroy(err as Error));
    return out;
  }

  async function* list(): AsyncIterable<string> {
    const level1 = (await fsp.readdir(root)).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort();
    for (const a of level1) {
      const level2 = (await fsp.readdir(path.join(root, a))).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort();
      for (const b of level2) {
        const names = (await fsp.readdir(path.join(root, a, b))).sort();
        for (const name of names) {
          const m = /^([0-9a-f]{64})\.eml\.gz$/.exec(name);
          if (m) yield m[1]!;
        }
      }
    }
  }

  return {
    put,
    get,
    getStream,
    list,
    async has(sha256) {
      return fsp.stat(blobPath(sha256)).then(() => true, () => false);
    },
    async stat(sha256) {
      const st = await fsp.stat(blobPath(sha256)).catch(() => null);
      return st ? { storedSize: st.size } : null;
    },
    async delete(sha256) {
      const file = blobPath(sha256);
      recent.delete(sha256);
      await fsp.rm(file, { force: true });
      await syncDir(path.dirname(file));
    },
  };
}
