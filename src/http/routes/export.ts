import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AuditDetails } from '../../audit/entries.js';
import { streamSink } from '../../export/byte-sink.js';
import { newExportId } from '../../export/exporter.js';
import { downloadName } from '../../export/names.js';
import { SelectionError, type Selection, type SelectionSpec } from '../../export/selection.js';
import { createMboxSink, createZipSink, type FormatSink } from '../../export/sinks.js';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { mailScope } from '../auth.js';
import { ApiError } from '../errors.js';

interface ExportQuery {
  q?: string;
  mailbox?: string;
  domain?: string;
  after?: string;
  before?: string;
  format: 'mbox' | 'zip';
}

const DIGEST_TRAILER = 'x-spindle-export-sha256';
const day = { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' } as const;

/** The request as asked, for the audit entry of a refused export. */
const asked = (query: ExportQuery): AuditDetails => ({
  ...(query.q !== undefined ? { query: query.q } : {}), ...(query.mailbox !== undefined ? { mailbox: query.mailbox } : {}),
  ...(query.domain !== undefined ? { domain: query.domain } : {}), after: query.after ?? null, before: query.before ?? null, format: query.format,
});

function specOf(query: ExportQuery): SelectionSpec {
  const given = [query.q, query.mailbox, query.domain].filter((v) => v !== undefined).length;
  if (given !== 1) throw new ApiError(400, 'bad_request', 'give exactly one of q (a search), mailbox (addresses, comma-separated) or domain');
  if (query.q !== undefined) return { query: query.q };
  if (query.mailbox !== undefined) return { mailbox: query.mailbox.split(',') };
  return { domain: query.domain! };
}

export const exportRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const exporter = deps.exporter;
  if (!exporter) return;

  /**
   * Streams an export as a download, in constant memory (backpressure from the client reaches the
   * blob reads). Two audit entries, tied by the export id in `target`: the first, with the request
   * and the count, is durable before the first byte; the second, with the digest, is durable
   * before the last byte (if it cannot be written the download ends incomplete), or records
   * `failed` when the client goes away or a read fails. A user exports only mail in which one of
   * their addresses takes part: the restriction is part of the selection's SQL, as in search.
   */
  app.get<{ Querystring: ExportQuery }>('/api/export', {
    config: { access: { roles: ['auditor', 'user'] } },
    // A HEAD must not run (and record) a whole export.
    exposeHeadRoute: false,
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          q: { type: 'string', maxLength: 4096 },
          mailbox: { type: 'string', minLength: 3, maxLength: 10_000 },
          domain: { type: 'string', minLength: 1, maxLength: 253 },
          after: day,
          before: day,
          format: { type: 'string', enum: ['mbox', 'zip'], default: 'mbox' },
        },
      },
    },
  }, async (request: FastifyRequest<{ Querystring: ExportQuery }>, reply) => {
    const { format } = request.query;
    const spec = specOf(request.query);
    let selection: Selection;
    try {
      selection = exporter.select({ spec, after: request.query.after, before: request.query.before, scope: mailScope(request.principal!) });
    } catch (err) {
      if (!(err instanceof SelectionError)) throw err;
      await recordAccess(deps.audit, request, { action: 'export', outcome: 'failed', details: { ...asked(request.query), error: err.code } });
      throw new ApiError(400, err.code, err.message);
    }
    const id = newExportId();
    const request_ = { ...selection.summary, format };
    let exported = 0;
    let bytes = 0;
    const body = new PassThrough();
    const out = streamSink(body, {
      beforeEnd: async (sum) => {
        await recordAccess(deps.audit, request, { action: 'export', target: id, outcome: 'ok', details: { phase: 'end', ...request_, count: exported, bytes, digest: sum } });
        // Sent after the last chunk (chunked encoding), for clients that read trailers (curl, Node).
        reply.raw.addTrailers({ [DIGEST_TRAILER]: sum });
      },
    });
    const tmpDir = format === 'zip' ? await fsp.mkdtemp(path.join(os.tmpdir(), 'spindle-export-')) : null;
    const removeTmp = async () => {
      if (tmpDir) await fsp.rm(tmpDir, { recursive: true, force: true });
    };
    let sink: FormatSink;
    try {
      const header = { createdAt: new Date().toISOString(), selection: selection.summary, count: selection.count };
      sink = tmpDir ? await createZipSink(out, tmpDir, header) : createMboxSink(out, null, header);
      await recordAccess(deps.audit, request, { action: 'export', target: id, outcome: 'ok', details: { phase: 'start', ...request_, count: selection.count } });
    } catch (err) {
      await removeTmp();
      throw err;
    }

    // The response is ours from here: headers (with the count) go out at once, and a failure later
    // can only cut the body short, which a client sees as an incomplete download.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': format === 'zip' ? 'application/zip' : 'application/mbox',
      'content-disposition': `attachment; filename="${downloadName(new Date(), format)}"`,
      'x-spindle-export-id': id,
      'x-spindle-export-count': String(selection.count),
      trailer: DIGEST_TRAILER,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    });
    res.flushHeaders();
    // A client that goes away closes res; pipeline then destroys body, and the next write fails.
    pipeline(body, res).catch(() => undefined);

    const onProgress = (p: { done: number; bytes: number }) => {
      exported = p.done;
      bytes = p.bytes;
    };
    void exporter.run({ selection, sink, onProgress })
      .catch(async (err: unknown) => {
        body.destroy();
        const error = err instanceof ApiError ? err.code : (err as Error).message;
        request.log.warn({ event: 'export.failed', export: id, err }, 'export stopped before the end');
        await recordAccess(deps.audit, request, { action: 'export', target: id, outcome: 'failed', details: { phase: 'end', ...request_, count: exported, error } })
          .catch(() => undefined); // already logged by recordAccess
      })
      .finally(removeTmp);
  });
};
