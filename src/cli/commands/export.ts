import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AuditDetails } from '../../audit/entries.js';
import type { Config } from '../../config/settings.js';
import { openDatabase } from '../../db/database.js';
import { openFileSink } from '../../export/byte-sink.js';
import { createExporter, newExportId, type Exporter, type ExportResult } from '../../export/exporter.js';
import { OutputError, prepareExportFiles, type ExportFiles } from '../../export/output-files.js';
import { SelectionError, type Selection, type SelectionSpec } from '../../export/selection.js';
import { createDirSink, createMboxSink, createZipSink, type ExportFormat, type FormatSink } from '../../export/sinks.js';
import { dataPaths } from '../../runtime/paths.js';
import { createFsBlobStore } from '../../store/fs-store.js';
import { recordCliAudit } from '../cli-audit.js';
import { CliError } from '../errors.js';
import { createProgress } from '../progress.js';

export interface ExportCommandOptions {
  query?: string;
  mailbox?: string[];
  domain?: string;
  after?: string;
  before?: string;
  format?: string;
  out?: string;
  force?: boolean;
}

const FORMATS: readonly ExportFormat[] = ['mbox', 'zip', 'dir'];
const MB = 1e6;
/** Reader threads (read, gunzip, sha256) beside the main thread (quote, manifest, hash, write); see docs/benchmarks.md. */
const READ_THREADS = Math.max(1, Math.min(2, os.availableParallelism() - 1));

function parseSpec(o: ExportCommandOptions): SelectionSpec {
  const given = [o.query !== undefined, o.mailbox !== undefined, o.domain !== undefined].filter(Boolean).length;
  if (given !== 1) throw new CliError('give exactly one of --query, --mailbox or --domain', 2);
  if (o.query !== undefined) return { query: o.query };
  if (o.mailbox !== undefined) return { mailbox: o.mailbox };
  return { domain: o.domain! };
}

async function openSink(format: ExportFormat, files: ExportFiles, header: { createdAt: string; selection: Selection['summary']; count: number }): Promise<FormatSink> {
  if (format === 'dir') return createDirSink(files.main, header);
  const out = await openFileSink(files.main);
  if (format === 'zip') return createZipSink(out, files.tmpDir, header);
  const m = files.manifest!;
  return createMboxSink(out, { csv: await openFileSink(m.csv), json: await openFileSink(m.json) }, header);
}

const rate = (n: number, seconds: number) => n / Math.max(seconds, 0.001);

function summary(result: ExportResult, format: ExportFormat, finalPaths: string[], seconds: number): string {
  const [main, ...sidecars] = finalPaths;
  return [
    `Exported ${result.exported.toLocaleString('en')} message${result.exported === 1 ? '' : 's'} (${(result.bytes / MB).toFixed(1)} MB) ` +
      `to ${main}${format === 'dir' ? '/' : ''} in ${seconds.toFixed(1)} s (${rate(result.bytes / MB, seconds).toFixed(1)} MB/s, ${Math.round(rate(result.exported, seconds))} msg/s)`,
    ...(format === 'mbox' ? [`  manifest: ${sidecars.slice(0, 2).join(', ')}`] : [`  manifest: manifest.csv, manifest.json inside`]),
    `  sha256:   ${result.digest}  (${sidecars.at(-1)}${format === 'dir' ? ', of manifest.json' : ''})`,
  ].join('\n');
}

/** The export proper: on record before it starts, renamed into place or removed at the end. */
async function runAndCommit(config: Config, x: {
  id: string; request: AuditDetails; format: ExportFormat; selection: Selection; files: ExportFiles; exporter: Exporter; signal: AbortSignal;
}): Promise<void> {
  const { id, request, format, selection, files } = x;
  const started = performance.now();
  const progress = createProgress('export', selection.count);
  try {
    await recordCliAudit(config, { action: 'export', target: id, details: { phase: 'start', ...request, count: selection.count } });
    x.signal.throwIfAborted();
    const sink = await openSink(format, files, { createdAt: new Date().toISOString(), selection: selection.summary, count: selection.count });
    const result = await x.exporter.run({
      selection, sink, signal: x.signal,
      onProgress: ({ done, bytes }) => {
        const seconds = (performance.now() - started) / 1000;
        progress.update(done, `| ${(bytes / MB).toFixed(1)} MB | ${rate(bytes / MB, seconds).toFixed(1)} MB/s`);
      },
    });
    progress.stop();
    const finalPaths = await files.commit(result.digest);
    await recordCliAudit(config, {
      action: 'export', target: id,
      details: { phase: 'end', ...request, count: result.exported, bytes: result.bytes, digest: result.digest },
    });
    process.stdout.write(`${summary(result, format, finalPaths, (performance.now() - started) / 1000)}\n`);
  } catch (err) {
    progress.stop();
    await files.discard();
    const message = (err as Error).message;
    const unrecorded = await recordCliAudit(config, { action: 'export', target: id, outcome: 'failed', details: { phase: 'end', ...request, error: message } })
      .then(() => '', (auditErr: unknown) => ` (and its failure could not be put on the audit trail: ${(auditErr as Error).message})`);
    throw new CliError(`export failed, nothing was left under ${request.out}: ${message}${unrecorded}`);
  }
}

/**
 * `spindle export`: writes the selected messages, byte for byte, as mbox, zip or a directory, with
 * manifests and a digest, under temporary names renamed into place at the end. It only reads the
 * archive (database read-only, blob store read-only), so it runs beside a live server. Both its
 * start and its end are on the audit trail, as `cli:<OS user>`.
 */
export async function exportCommand(config: Config, o: ExportCommandOptions): Promise<void> {
  const spec = parseSpec(o);
  const format = (o.format ?? '') as ExportFormat;
  if (!FORMATS.includes(format)) throw new CliError('--format must be mbox, zip or dir', 2);
  if (!o.out) throw new CliError('--out PATH is required', 2);
  const paths = dataPaths(config.dataDir);
  if (!fs.existsSync(paths.db)) throw new CliError(`no archive database at ${paths.db} (point --data-dir / SPINDLE_DATA_DIR at your archive)`);
  const db = openDatabase({ file: paths.db, readonly: true });
  // An export touches each page once: a small page cache keeps memory flat (the default is 64 MiB).
  db.pragma('cache_size = -8192');
  try {
    const exporter = createExporter({
      db, store: createFsBlobStore({ dir: paths.blobs, recentCacheBytes: 0, readOnly: true }), blobsDir: paths.blobs, readThreads: READ_THREADS,
    });
    let selection: Selection;
    try {
      selection = exporter.select({ spec, after: o.after, before: o.before });
    } catch (err) {
      if (err instanceof SelectionError) throw new CliError(`${err.code === 'bad_query' ? 'bad query: ' : ''}${err.message}`, 2);
      throw err;
    }
    const id = newExportId();
    const request: AuditDetails = { ...selection.summary, format, out: path.resolve(o.out) };
    // From the first partial file on, Ctrl-C or a TERM stops the export cleanly (partial files
    // removed, the end on record) instead of killing the process halfway.
    const abort = new AbortController();
    const onSignal = () => abort.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      let files: ExportFiles;
      try {
        files = await prepareExportFiles(o.out, format, o.force ?? false);
      } catch (err) {
        if (err instanceof OutputError) throw new CliError(err.message, 2);
        throw err;
      }
      await runAndCommit(config, { id, request, format, selection, files, exporter, signal: abort.signal });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    db.close();
  }
}
