import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { syncFileSystem } from '../store/blob-journal.js';
import { andThen, openFileSink, readChunks, type ByteSink } from './byte-sink.js';
import { createManifestWriter, type ExportItem, type ManifestHeader, type ManifestWriter } from './manifest.js';
import { writeMboxMessage } from './mbox.js';
import { emlFileName } from './names.js';
import { ZipWriter } from './zip.js';

export type ExportFormat = 'mbox' | 'zip' | 'dir';

/** One export format: takes messages in order, writes them and their manifest entries. */
export interface FormatSink {
  /** Undefined when the message was only buffered (see ByteSink.write); a promise to wait for otherwise. */
  add(item: ExportItem, body: Buffer | AsyncIterable<Buffer>): Promise<void> | undefined;
  /** Completes the output; `digest` is the export's sha256 (of the file, or of manifest.json for a directory). */
  finish(totals: { exported: number; bytes: number }): Promise<{ digest: string; bytes: number }>;
  /** Stops after a failure and releases what the sink holds. Never throws. */
  abort(): Promise<void>;
}

type HeaderInput = Omit<ManifestHeader, 'format'>;

/**
 * mbox: the messages into `out`; manifest.csv/.json into the two sinks given (files beside it), or
 * none (an mbox download over HTTP is one file; the API's zip carries the manifests).
 */
export function createMboxSink(out: ByteSink, manifest: { csv: ByteSink; json: ByteSink } | null, header: HeaderInput): FormatSink {
  const m = manifest ? createManifestWriter(manifest, { ...header, format: 'mbox' }) : null;
  return {
    add(item, body) {
      return andThen(writeMboxMessage(out, item, body), () => m?.add(item.entry));
    },
    async finish(totals) {
      await out.close();
      await m?.close(totals);
      return { digest: out.digest(), bytes: out.bytes };
    },
    async abort() {
      await out.destroy();
      await m?.destroy();
    },
  };
}

/**
 * zip: one .eml per message, then manifest.csv and manifest.json. The manifests are written to
 * `tmpDir` while the export runs (they go last in the zip) and removed afterwards.
 */
export async function createZipSink(out: ByteSink, tmpDir: string, header: HeaderInput): Promise<FormatSink> {
  const files = { csv: path.join(tmpDir, 'manifest.csv'), json: path.join(tmpDir, 'manifest.json'), spool: path.join(tmpDir, 'central-directory') };
  const m = createManifestWriter({ csv: await openFileSink(files.csv, { sync: false }), json: await openFileSink(files.json, { sync: false }) }, { ...header, format: 'zip' });
  const zip = new ZipWriter(out, files.spool);
  const removeTemp = () => Promise.all([files.csv, files.json, files.spool].map((f) => fsp.rm(f, { force: true })));
  return {
    add(item, body) {
      const file = emlFileName({ id: item.entry.id, sortTime: item.sortTime, subject: item.entry.subject });
      const mtime = new Date(item.sortTime);
      const written = Buffer.isBuffer(body) ? zip.addBuffer(file, body, mtime) : zip.addStream(file, body, mtime);
      return andThen(written, () => m.add({ ...item.entry, file }));
    },
    async finish(totals) {
      await m.close(totals);
      const now = new Date();
      await zip.addStream('manifest.csv', readChunks(files.csv), now);
      await zip.addStream('manifest.json', readChunks(files.json), now);
      await zip.finish();
      await out.close();
      await removeTemp();
      return { digest: out.digest(), bytes: out.bytes };
    },
    async abort() {
      await out.destroy();
      await m.destroy();
      await zip.abort();
      await removeTemp().catch(() => undefined);
    },
  };
}

const WRITES_IN_FLIGHT = 8;

/**
 * A directory of .eml files with manifest.csv and manifest.json beside them. The digest is that
 * of manifest.json, which lists every file's sha256. Files are written a few at a time and made
 * durable together at the end (one syncfs), not one fsync each.
 */
export async function createDirSink(dir: string, header: HeaderInput): Promise<FormatSink> {
  await fsp.mkdir(dir, { recursive: true });
  const m: ManifestWriter = createManifestWriter({
    csv: await openFileSink(path.join(dir, 'manifest.csv')), json: await openFileSink(path.join(dir, 'manifest.json')),
  }, { ...header, format: 'dir' });
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  const writeFile = async (file: string, body: Buffer | AsyncIterable<Buffer>) => {
    // A copy: the write outlives add(), and a whole body may be a view of the reader's ring.
    if (Buffer.isBuffer(body)) await fsp.writeFile(file, Buffer.from(body), { mode: 0o640 });
    else await pipeline(Readable.from(body), fs.createWriteStream(file, { mode: 0o640 }));
  };
  const drain = async () => {
    await Promise.all(inFlight);
    if (failure) throw failure;
  };
  let bytes = 0;
  return {
    async add(item, body) {
      if (failure) throw failure;
      const file = emlFileName({ id: item.entry.id, sortTime: item.sortTime, subject: item.entry.subject });
      bytes += item.entry.size;
      // A streamed (large) body is written before the next message is read; whole ones overlap.
      if (!Buffer.isBuffer(body)) {
        await drain();
        await writeFile(path.join(dir, file), body);
      } else {
        const p: Promise<void> = writeFile(path.join(dir, file), body).catch((err: unknown) => {
          failure ??= err;
        }).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      }
      await m.add({ ...item.entry, file });
    },
    async finish(totals) {
      await drain();
      await m.close(totals);
      if (!(await syncFileSystem(dir))) throw new Error(`could not sync ${dir} to disk`);
      return { digest: m.jsonDigest(), bytes };
    },
    async abort() {
      await Promise.allSettled(inFlight);
      await m.destroy();
    },
  };
}
