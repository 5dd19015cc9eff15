import type { FastifyPluginAsync } from 'fastify';
import { IntegrityBusyError } from '../../integrity/verify-thread.js';
import type { AppDeps } from '../app.js';
import { ApiError } from '../errors.js';

/**
 * `spindle verify` over HTTP: ledger and audit chains, blobs re-hashed (a random sample by
 * default, `all=true` for every one), missing / corrupt / orphaned, purged and purge-pending.
 * Runs on a worker thread, one at a time.
 */
export const integrityRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const verify = deps.retention!.verify;
  app.get<{ Querystring: { sample?: number; all?: boolean } }>('/api/integrity', {
    config: { access: { roles: ['auditor', 'admin'] } },
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { sample: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 100 }, all: { type: 'boolean' } },
      },
    },
  }, async (request) => {
    try {
      return await verify(request.query.all ? null : (request.query.sample ?? 100));
    } catch (err) {
      if (err instanceof IntegrityBusyError) throw new ApiError(409, err.code, err.message);
      throw err;
    }
  });
};
