import type { FastifyPluginAsync } from 'fastify';
import { QueryError } from '../../search/query.js';
import { CursorError } from '../../search/search.js';
import type { AppDeps } from '../app.js';
import { ApiError } from '../errors.js';

const address = { type: 'object', properties: { address: { type: 'string' }, name: { type: 'string' } } } as const;

export const searchRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get<{ Querystring: { q?: string; limit?: number; cursor?: string } }>('/api/search', {
    config: { access: { roles: ['auditor'] } },
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
    try {
      return deps.searcher.search(request.query.q ?? '', { limit: request.query.limit ?? 50, cursor: request.query.cursor });
    } catch (err) {
      if (err instanceof QueryError) throw new ApiError(400, 'bad_query', err.message);
      if (err instanceof CursorError) throw new ApiError(400, 'bad_cursor', err.message);
      throw err;
    }
  });
};
