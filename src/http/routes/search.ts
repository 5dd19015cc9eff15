import type { FastifyPluginAsync } from 'fastify';
import type { AuditDetails } from '../../audit/entries.js';
import { QueryError } from '../../search/query.js';
import { CursorError } from '../../search/search.js';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { mailScope } from '../auth.js';
import { ApiError } from '../errors.js';

const address = { type: 'object', properties: { address: { type: 'string' }, name: { type: 'string' } } } as const;

export const searchRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get<{ Querystring: { q?: string; limit?: number; cursor?: string } }>('/api/search', {
    config: { access: { roles: ['auditor', 'user'] } },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          q: { type: 'string', maxLength: 2000, default: '' },
          limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          cursor: { type: 'string', maxLength: 32 },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            total: { type: 'integer' },
            next_cursor: { type: ['string', 'null'] },
            items: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'integer' }, date: { type: 'string' }, from: address, to: { type: 'array', items: address },
                  subject: { type: 'string' }, snippet: { type: 'string' },
                  highlights: { type: 'array', items: { type: 'array', items: { type: 'integer' } } },
                  size: { type: 'integer' }, attachments: { type: 'integer' },
                },
              },
            },
          },
        },
      },
    },
  }, async (request) => {
    const query = request.query.q ?? '';
    const page: AuditDetails = request.query.cursor ? { cursor: request.query.cursor } : {};
    let result;
    try {
      result = deps.searcher.search(query, { limit: request.query.limit ?? 50, cursor: request.query.cursor, scope: mailScope(request.principal!) });
    } catch (err) {
      // A refused query is still on record: what someone tried to look for is evidence too.
      const code = err instanceof QueryError ? 'bad_query' : err instanceof CursorError ? 'bad_cursor' : 'internal';
      await recordAccess(deps.audit, request, { action: 'search', outcome: 'failed', details: { query, ...page, error: code } });
      if (err instanceof QueryError) throw new ApiError(400, 'bad_query', err.message);
      if (err instanceof CursorError) throw new ApiError(400, 'bad_cursor', err.message);
      throw err;
    }
    await recordAccess(deps.audit, request, { action: 'search', outcome: 'ok', details: { query, ...page, hits: result.total } });
    return result;
  });
};
