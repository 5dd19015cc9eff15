import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Readable as ReadableStream } from 'node:stream';
import zlib from 'node:zlib';
import { BlobNotFoundError, MessageTooLargeError, SHA256_HEX, type BlobStore, type PutResult } from './blob-store.js';
import { openBlobJournal, syncFileSystem, type BlobJournal } from './blob-journal.js';
import { DEFAULT_GZIP_LEVEL, deflateOptions } from './compression.js';
import { createDirSyncer, fsyncDir } from './dir-sync.js';
import { createFileWriter } from './file-writer.js';
import { listPacks, readPack, type PackRecord } from './pack.js';
import { createRecentCache } from './recent-cache.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export interface FsBlobStoreOptions {
  /** The blobs/ directory. */
  dir: string;
  /** gzip level (default 1, see compression.ts); incompressible large messages are Huffman-coded. */
  level?: number;
  /** Messages up to this size are compressed in one call instead of streamed. */
  bufferLimit?: number;
  /** Bytes of recently stored originals kept in memory, so the indexer need not read them back. */
  recentCacheBytes?: number;
  /** Only read: no journal, no recovery, no clean-up (for commands beside a live server). */
  readOnly?: boolean;
  /** Retire the blob journal's pack after this many bytes or this much time. */
  checkpointBytes?: number;
  checkpointMs?: number;
  /** Testing hook: how a checkpoint makes materialized blobs durable (default: syncfs, else fsyncs). */
  syncAll?: (files: string[]) => Promise<void>;
}

/** Buffered messages up to this size are compressed synchronously: async zlib's per-call set-up costs more than a small deflate. */
const SYNC_GZIP_LIMIT = 32 * 1024;

/** Where a blob lives under blobs/: `ab/cd/<sha256>.eml.gz` (also read directly by export's reader thread). */
export function blobFileName(sha256: string): string {
  return path.join(sha256.slice(0, 2), sha256.slice(2, 4), `${sha256}.eml.gz`);
}

/**
 * Blobs on local disk: blobs/ab/cd/<sha256>.eml.gz, gzip of the exact original bytes, so that
 * `zcat` of a blob is the message. A blob either exists whole under its name or not at all.
 *
 * Durability, two ways:
 * - messages up to bufferLimit are group-committed to the blob journal (blobs/journal/*.pack,
 *   one fdatasync per batch), then written as files without fsync; a checkpoint syncs the file
 *   system and deletes the pack. On start-up, packs left by a crash are replayed.
 * - larger messages are streamed to blobs/tmp, fsynced, renamed into place, directory fsynced.
 */
export function createFsBlobStore(opts: FsBlobStoreOptions): BlobStore {
  const root = path.resolve(opts.dir);
  const tmpDir = path.join(root, 'tmp');
  const level = opts.level ?? DEFAULT_GZIP_LEVEL;
  const bufferLimit = opts.bufferLimit ?? 1024 * 1024;
  const syncDir = createDirSyncer();
  const recent = createRecentCache(opts.recentCacheBytes ?? 64 * 1024 * 1024);
  const journalDir = path.join(root, 'journal');
  const blobPath = (sha: string): string => {
    if (!SHA256_HEX.test(sha)) throw new BlobNotFoundError(sha);
    return path.join(root, blobFileName(sha));
  };
  /** Journal records whose file is not yet written, by sha256: gzip bytes, and when they are durable. */
  const unwritten = new Map<string, { gz: Buffer; durable: Promise<void> }>();
  /** Blobs a purge means to delete, and whether mail needed them again since (see watch()). */
  const watched = new Map<string, { stored: boolean }>();
  /** Puts under way, by blob: they have decided to rely on these bytes but not yet returned. */
  const inFlight = new Map<string, number>();
  /** Deletions under way: a put of the same bytes waits for them, then stores the bytes anew. */
  const deleting = new Map<string, Promise<void>>();
  /** Files written since the last checkpoint, for the fsync fallback. */
  let written: string[] = [];
  let tmpSeq = 0;

  const fileWriter = opts.readOnly ? null : createFileWriter();

  /** Writes blob files from journal records, without fsync: the pack holds them until a checkpoint. */
  async function materialize(records: PackRecord[]): Promise<void> {
    const items = records.map(({ sha256, gz }) => ({ final: blobPath(sha256), tmp: path.join(tmpDir, `j${process.pid}-${++tmpSeq}.tmp`), data: gz }));
    written.push(...(await fileWriter!.write(items)));
    // Only now do readers go to the files. After a failure the bytes stay readable from memory,
    // and the checkpoint writes them again from the pack (or start-up replays it).
    for (const r of records) unwritten.delete(r.sha256);
  }

  async function syncAll(): Promise<void> {
    const files = written;
    written = [];
    if (opts.syncAll) return opts.syncAll(files);
    if (files.length === 0 || (await syncFileSystem(root))) return;
    // No syncfs here: fsync every file and directory written since the last checkpoint.
    await Promise.all(files.map(async (f) => {
      const h = await fsp.open(f, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }));
    const dirs = new Set(files.flatMap((f) => [path.dirname(f), path.dirname(path.dirname(f))]));
    await Promise.all([...dirs, root].map((d) => fsyncDir(d)));
  }

  let journal: BlobJournal | null = null;
  if (!opts.readOnly) {
    fs.mkdirSync(tmpDir, { recursive: true });
    // Anything left in tmp/ is from a crash before rename: never acknowledged, or still in a pack.
    for (const name of fs.readdirSync(tmpDir)) fs.rmSync(path.join(tmpDir, name), { force: true });
    replayJournal();
    journal = openBlobJournal({
      dir: journalDir, materialize, syncAll,
      checkpointBytes: opts.checkpointBytes ?? 64 * 1024 * 1024, checkpointMs: opts.checkpointMs ?? 30_000,
      onError: (err) => process.emitWarning(`blob journal: ${(err as Error).message}`, 'SPINDLE_BLOB_JOURNAL'),
    });
  }

  /** Start-up recovery: every complete, valid record of a leftover pack becomes a durable file. */
  function replayJournal(): void {
    const packs = listPacks(journalDir);
    if (packs.length === 0) return;
    const damaged = new Set<string>();
    for (const pack of packs) {
      for (const r of readPack(pack.file)) {
        if (!r.valid) {
          damaged.add(pack.file);
          continue;
        }
        const final = blobPath(r.sha256);
        // After a power loss a file renamed into place before the checkpoint may exist with
        // missing data: only a file with exactly the journaled bytes counts as written.
        if (fs.existsSync(final) && fs.readFileSync(final).equals(r.gz)) continue;
        fs.mkdirSync(path.dirname(final), { recursive: true });
        const tmp = path.join(tmpDir, `replay-${r.sha256}.tmp`);
        const fd = fs.openSync(tmp, 'w');
        try {
          fs.writeSync(fd, r.gz);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, final);
        for (const d of [path.dirname(final), path.dirname(path.dirname(final)), root]) {
          const dfd = fs.openSync(d, 'r');
          fs.fsyncSync(dfd);
          fs.closeSync(dfd);
        }
      }
    }
    // A pack with a record that no longer matches its hash is kept aside as evidence, not deleted.
    for (const pack of packs) {
      if (damaged.has(pack.file)) fs.renameSync(pack.file, `${pack.file}.damaged`);
      else fs.rmSync(pack.file);
    }
  }

  /** mkdir -p that fsyncs the parent of every directory it creates. */
  async function ensureDir(dir: string): Promise<void> {
    const first = await fsp.mkdir(dir, { recursive: true });
    if (first === undefined) return;
    const created: string[] = [];
    for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.push(d);
    await Promise.all(created.map((d) => syncDir(path.dirname(d))));
  }

  /**
   * A put now relies on these bytes (found them stored, or is storing them): a watched blob may no
   * longer be deleted. Returns the release for when the put has returned.
   */
  function claim(sha256: string): () => void {
    const w = watched.get(sha256);
    if (w) w.stored = true;
    inFlight.set(sha256, (inFlight.get(sha256) ?? 0) + 1);
    return () => {
      const left = (inFlight.get(sha256) ?? 1) - 1;
      if (left > 0) inFlight.set(sha256, left);
      else inFlight.delete(sha256);
    };
  }

  async function put(source: AsyncIterable<Buffer>, putOpts: { maxBytes?: number } = {}): Promise<PutResult> {
    const max = putOpts.maxBytes ?? Infinity;
    const hash = createHash('sha256');
    const tmp = path.join(tmpDir, `s${process.pid}-${++tmpSeq}.tmp`);
    let size = 0;
    const head: Buffer[] = [];
    let streaming: { input: PassThrough; done: Promise<void> } | null = null;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > max) throw new MessageTooLargeError(max);
        hash.update(chunk);
        if (streaming) {
          // Race the drain with the pipeline: a failed file write must end the put, not hang it.
          if (!streaming.input.write(chunk)) await Promise.race([new Promise((r) => streaming!.input.once('drain', r)), streaming.done]);
          continue;
        }
        head.push(chunk);
        if (size > bufferLimit) {
          // Large message: from here on compress as it arrives, in constant memory.
          const input = new PassThrough();
          // flush: fsync before close, so the blob is durable before it is renamed into place.
          const done = pipeline(input, zlib.createGzip(deflateOptions(Buffer.concat(head), level)), fs.createWriteStream(tmp, { flags: 'wx', flush: true }));
          done.catch(() => undefined); // observed below; this only stops an unhandled-rejection report
          streaming = { input, done };
          for (const c of head.splice(0)) input.write(c);
        }
      }
      if (streaming) {
        streaming.input.end();
        await streaming.done;
        const sha256 = hash.digest('hex');
        const release = claim(sha256);
        try {
          const final = blobPath(sha256);
          const storedSize = (await fsp.stat(tmp)).size;
          let existing = await fsp.stat(final).catch(() => null);
          const deletion = deleting.get(sha256);
          if (deletion) {
            // A purge is deleting these very bytes: let it finish, then store them anew.
            await deletion;
            existing = null;
          }
          if (existing) {
            await fsp.rm(tmp, { force: true });
            return { sha256, size, storedSize: existing.size, existed: true };
          }
          await ensureDir(path.dirname(final));
          await fsp.rename(tmp, final);
          await syncDir(path.dirname(final));
          return { sha256, size, storedSize, existed: false };
        } finally {
          release();
        }
      }
      const original = Buffer.concat(head, size);
      const sha256 = hash.digest('hex');
      const release = claim(sha256);
      try {
        return await putBuffered(sha256, original, size);
      } finally {
        release();
      }
    } catch (err) {
      streaming?.input.destroy();
      await streaming?.done.catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** A message small enough to hold in memory: one record of the blob journal (group commit). */
  async function putBuffered(sha256: string, original: Buffer, size: number): Promise<PutResult> {
    const deletion = deleting.get(sha256);
    // A purge is deleting these very bytes: let it finish, then store them anew.
    if (deletion) await deletion;
    recent.set(sha256, original);
    const pending = unwritten.get(sha256);
    if (pending) {
      // The same bytes are being committed by another session: durable when that one is.
      await pending.durable;
      return { sha256, size, storedSize: pending.gz.length, existed: true };
    }
    const existingFile = blobPath(sha256);
    if (fs.existsSync(existingFile)) return { sha256, size, storedSize: fs.statSync(existingFile).size, existed: true };
    if (!journal) throw new Error('blob store was opened read-only');
    const deflate = deflateOptions(original, level);
    const gz = size <= SYNC_GZIP_LIMIT ? zlib.gzipSync(original, deflate) : await gzip(original, deflate);
    const raced = unwritten.get(sha256);
    if (raced) {
      await raced.durable;
      return { sha256, size, storedSize: raced.gz.length, existed: true };
    }
    const durable = journal.append({ sha256, gz });
    unwritten.set(sha256, { gz, durable });
    try {
      await durable;
    } catch (err) {
      unwritten.delete(sha256);
      throw err;
    }
    return { sha256, size, storedSize: gz.length, existed: false };
  }

  async function get(sha256: string): Promise<Buffer> {
    const cached = recent.get(sha256);
    if (cached) return cached;
    const pending = unwritten.get(sha256);
    if (pending) return gunzip(pending.gz);
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
    const pending = unwritten.get(sha256);
    if (pending) return ReadableStream.from([pending.gz]).pipe(zlib.createGunzip());
    const out = new PassThrough();
    const file = fs.createReadStream(blobPath(sha256));
    file.on('error', (err) => {
      out.destroy((err as NodeJS.ErrnoException).code === 'ENOENT' ? new BlobNotFoundError(sha256) : err);
    });
    pipeline(file, zlib.createGunzip(), out).catch((err) => out.destroy(err as Error));
    return out;
  }

  async function* list(): AsyncIterable<string> {
    const pendingNames = new Set(unwritten.keys());
    yield* pendingNames;
    const level1 = (await fsp.readdir(root)).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort();
    for (const a of level1) {
      const level2 = (await fsp.readdir(path.join(root, a))).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort();
      for (const b of level2) {
        const names = (await fsp.readdir(path.join(root, a, b))).sort();
        for (const name of names) {
          const m = /^([0-9a-f]{64})\.eml\.gz$/.exec(name);
          if (m && !pendingNames.has(m[1]!)) yield m[1]!;
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
      if (unwritten.has(sha256)) return true;
      return fsp.stat(blobPath(sha256)).then(() => true, () => false);
    },
    async stat(sha256) {
      const pending = unwritten.get(sha256);
      if (pending) return { storedSize: pending.gz.length };
      const st = await fsp.stat(blobPath(sha256)).catch(() => null);
      return st ? { storedSize: st.size } : null;
    },
    watch(sha256s) {
      // A fresh watch each time: puts before it are the caller's to find in the ledger (a barrier).
      for (const sha of sha256s) watched.set(sha, { stored: inFlight.has(sha) });
    },
    async delete(sha256) {
      const w = watched.get(sha256);
      watched.delete(sha256);
      if (w?.stored) return false;
      // From here on a put of these bytes waits for the deletion and then stores them anew.
      let finished!: () => void;
      deleting.set(sha256, new Promise<void>((resolve) => (finished = resolve)));
      try {
        // Start-up replays leftover packs: a blob still in one must not be deleted before the pack
        // is retired, or a crash would bring it back. A checkpoint retires every pack so far.
        if (journal?.holds(sha256)) await journal.checkpoint();
        const file = blobPath(sha256);
        recent.delete(sha256);
        await fsp.rm(file, { force: true });
        await syncDir(path.dirname(file));
        return true;
      } finally {
        deleting.delete(sha256);
        finished();
      }
    },
    async close() {
      await journal?.close();
      await fileWriter?.close();
    },
  };
}
