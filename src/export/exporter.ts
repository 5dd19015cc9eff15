import { randomBytes } from 'node:crypto';
import type { Db } from '../db/database.js';
import type { BlobStore } from '../store/blob-store.js';
import { readMessages, type ReadOptions } from './blob-reader.js';
import { createBlobThreads } from './blob-thread.js';
import { collectGarbage } from './heap.js';
import { createItemLookup, type ExportItem } from './manifest.js';
import { selectMessages, type Selection, type SelectionRequest } from './selection.js';
import type { FormatSink } from './sinks.js';

export interface ExportProgress {
  /** Messages written. */
  done: number;
  /** Original message bytes written. */
  bytes: number;
}

export interface ExportResult {
  exported: number;
  /** Original bytes of the exported messages. */
  bytes: number;
  /** Bytes of the output (the mbox or zip file; for a directory, its messages). */
  outputBytes: number;
  /** sha256 of the output file, or of manifest.json for a directory. */
  digest: string;
}

export interface RunOptions {
  selection: Selection;
  sink: FormatSink;
  /** After every batch of messages (up to 64), and so after the last one. */
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
  read?: ReadOptions;
}

/** The export of the API and the CLI: select in SQL, read blobs in order, write one format. */
export interface Exporter {
  select(req: SelectionRequest): Selection;
  /** Writes every selected message to the sink; on any failure the sink is aborted and the error thrown. */
  run(opts: RunOptions): Promise<ExportResult>;
}

/** Message bytes between two requested collections (see heap.ts). */
const COLLECT_EVERY = 64 * 1024 * 1024;

/** A short random id that ties an export's audit entries (start and end) together. */
export const newExportId = (): string => `exp_${randomBytes(6).toString('hex')}`;

export interface ExporterDeps {
  db: Db;
  store: BlobStore;
  /** The local store's blobs/ directory: small messages are then read on reader threads. */
  blobsDir?: string;
  /** How many reader threads an export uses (default 1). */
  readThreads?: number;
}

export function createExporter(deps: ExporterDeps): Exporter {
  const lookup = createItemLookup(deps.db);
  return {
    select: (req) => selectMessages(deps.db, req),
    async run({ selection, sink, onProgress, signal, read }) {
      function* items(): Generator<ExportItem> {
        // Small pages: the items of a page stay alive until their messages are written.
        for (const ids of selection.pages(128)) yield* lookup(ids);
      }
      let done = 0;
      let bytes = 0;
      let collectedAt = 0;
      const threads = deps.blobsDir ? createBlobThreads(deps.blobsDir, deps.readThreads ?? 1) : null;
      try {
        for await (const batch of readMessages(deps.store, items(), { threads, ...read })) {
          signal?.throwIfAborted();
          for (const { item, body } of batch) {
            const wait = sink.add(item, body);
            if (wait) await wait;
            done++;
            bytes += item.entry.size;
          }
          if (bytes - collectedAt > COLLECT_EVERY) {
            collectedAt = bytes;
            collectGarbage();
          }
          onProgress?.({ done, bytes });
        }
        signal?.throwIfAborted();
        const out = await sink.finish({ exported: done, bytes });
        return { exported: done, bytes, outputBytes: out.bytes, digest: out.digest };
      } catch (err) {
        await sink.abort();
        throw err;
      } finally {
        await threads?.close();
      }
    },
  };
}
