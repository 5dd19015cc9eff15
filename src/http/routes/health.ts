import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';

const statsSchema = {
  type: 'object',
  properties: {
    messages: { type: 'integer' }, deliveries: { type: 'integer' }, duplicates: { type: 'integer' },
    raw_bytes: { type: 'integer' }, stored_bytes: { type: 'integer' },
    index_lag: { type: 'object', properties: { records: { type: 'integer' }, seconds: { type: 'number' } } },
  },
} as const;

export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/api/health', {
    config: { access: { public: true } },
    schema: {
      response: {
        200: {
          type: 'object',
          properties: {
            status: { type: 'string' }, version: { type: 'string' },
            index_lag: { type: 'object', properties: { records: { type: 'integer' }, seconds: { type: 'number' } } },
          },
        },
      },
    },
  }, async () => {
    const lag = deps.indexLag();
    // Degraded, not down: mail is still being accepted durably; only search is behind.
    return { status: lag.seconds > 60 ? 'degraded' : 'ok', version: deps.version, index_lag: lag };
  });

  app.get('/api/stats', {
    config: { access: { roles: ['auditor', 'admin'] } },
    schema: { response: { 200: statsSchema } },
  }, async () => {
    const s = deps.reader.stats();
    return { messages: s.messages, deliveries: s.deliveries, duplicates: s.duplicates, raw_bytes: s.raw_bytes, stored_bytes: s.stored_bytes, index_lag: deps.indexLag() };
  });

  app.get('/metrics', { config: { access: { roles: ['auditor', 'admin'] } } }, async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
};
