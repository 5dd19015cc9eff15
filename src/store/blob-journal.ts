import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from './dir-sync.js';
import { encodeRecords, listPacks, packName, readPack, type PackRecord } from './pack.js';

export interface BlobJournal {
  /** Resolves once the record is in a pack file and fdatasynced; shared with concurrent appends. */
  append(record: PackRecord): Promise<void>;
  /** Starts a new pack; resolves once every earlier pack may be deleted (its blobs made durable). */
  checkpoint(): Promise<void>;
  /** True while a pack that start-up would replay still holds this blob. */
  holds(sha256: string): boolean;
  close(): Promise<void>;
}

export interface BlobJournalOptions {
  dir: string;
  /** Writes the blob files of a committed batch (without fsync). */
  materialize: (records: PackRecord[]) => Promise<void>;
  /** Makes every materialized blob file and directory durable (syncfs or per-file fsync). */
  syncAll: () => Promise<void>;
  checkpointBytes: number;
  checkpointMs: number;
  onError: (err: unknown) => void;
}

/**
 * Group commit for blobs, the same way the ledger does it: whatever was queued while the previous
 * write was being synced goes out in one write and one fdatasync. The pack is only a write-ahead
 * copy: once its blobs have been written as files and a checkpoint has synced them, it is deleted.
 */
export function openBlobJournal(opts: BlobJournalOptions): BlobJournal {
  fs.mkdirSync(opts.dir, { recursive: true });
  let n = (listPacks(opts.dir).at(-1)?.n ?? 0) + 1;
  let handle = fs.openSync(path.join(opts.dir, packName(n)), 'a');
  let size = 0;
  type Pending = { record: PackRecord; resolve: () => void; reject: (e: Error) => void };
  let queue: Pending[] = [];
  let writing = false;
  let rotateWaiters: Array<() => void> = [];
  const materializing = new Set<Promise<void>>();
  /** Set when writing a committed blob's file failed: its pack must not be retired blind. */
  let materializeFailed = false;
  let checkpointing: Promise<void> | null = null;
  /** Blobs in packs not yet retired, with the number of the newest pack holding each. */
  const inPacks = new Map<string, number>();
  const timer = setInterval(() => {
    if (size > 0) void checkpoint().catch(opts.onError);
  }, opts.checkpointMs);
  timer.unref();

  /** Switches appends to a new pack; only ever called while no write is in flight. */
  function rotateNow(): void {
    fs.closeSync(handle);
    n += 1;
    handle = fs.openSync(path.join(opts.dir, packName(n)), 'a');
    size = 0;
    const waiters = rotateWaiters;
    rotateWaiters = [];
    for (const w of waiters) w();
  }

  async function flush(): Promise<void> {
    writing = true;
    try {
      for (;;) {
        if (rotateWaiters.length > 0) rotateNow();
        if (queue.length === 0) break;
        const batch = queue;
        queue = [];
        const data = encodeRecords(batch.map((p) => p.record));
        const fd = handle;
        try {
          await new Promise<void>((resolve, reject) => fs.write(fd, data, 0, data.length, null, (err) => (err ? reject(err) : resolve())));
          await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
          size += data.length;
          // A pack unlinked under us (data dir removed) would take acknowledged blobs with it.
          if (fs.fstatSync(fd).nlink === 0) throw new Error('blob journal file was removed');
        } catch (err) {
          // Cut the partial write so later records stay readable; the batch is answered 4xx.
          try {
            fs.ftruncateSync(fd, size);
          } catch {
            /* the pack reader stops at the first incomplete record anyway */
          }
          for (const p of batch) p.reject(err as Error);
          continue;
        }
        for (const p of batch) {
          inPacks.set(p.record.sha256, n);
          p.resolve();
        }
        const m = opts.materialize(batch.map((p) => p.record)).catch((err: unknown) => {
          materializeFailed = true;
          opts.onError(err);
        });
        materializing.add(m);
        void m.finally(() => materializing.delete(m));
        if (size >= opts.checkpointBytes) void checkpoint().catch(opts.onError);
      }
    } finally {
      writing = false;
    }
  }

  function rotate(): Promise<void> {
    if (!writing) {
      rotateNow();
      return Promise.resolve();
    }
    return new Promise((resolve) => rotateWaiters.push(resolve));
  }

  function checkpoint(): Promise<void> {
    checkpointing ??= (async () => {
      try {
        const retiring = n;
        await rotate();
        await Promise.all([...materializing]);
        const old = listPacks(opts.dir).filter((p) => p.n <= retiring);
        if (materializeFailed) {
          // Write every blob of the retiring packs again from the packs themselves; if that
          // fails too, keep the packs (start-up replays them) and report.
          materializeFailed = false;
          for (const p of old) await opts.materialize(readPack(p.file).filter((r) => r.valid));
        }
        await opts.syncAll();
        for (const p of old) await fsp.rm(p.file, { force: true });
        await fsyncDir(opts.dir);
        for (const [sha, pack] of inPacks) if (pack <= retiring) inPacks.delete(sha);
      } finally {
        checkpointing = null;
      }
    })();
    return checkpointing;
  }

  return {
    append(record) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ record, resolve, reject });
        if (!writing) void flush();
      });
    },
    checkpoint,
    holds: (sha256) => inPacks.has(sha256),
    async close() {
      clearInterval(timer);
      while (writing) await new Promise((r) => setTimeout(r, 2));
      await checkpoint();
      fs.closeSync(handle);
      // The last, empty pack is not needed.
      const last = path.join(opts.dir, packName(n));
      if (fs.existsSync(last) && fs.statSync(last).size === 0) fs.rmSync(last);
    },
  };
}

/** syncfs(2) through coreutils `sync -f`: one call flushes every blob file and directory. */
export function syncFileSystem(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], (err) => resolve(!err));
  });
}
