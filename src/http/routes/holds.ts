import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { retentionError } from './retention.js';

const AUDITOR = { access: { roles: ['auditor'] as const } };
const DAY = '^\\d{4}-\\d{2}-\\d{2}$';

/**
 * Legal holds: the compliance officer's (auditor only). A held message is never purged, whatever
 * its retention; holds are evaluated at each purge, so they cover mail that arrives later too.
 */
export const holdRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const svc = deps.retention!.service;

  app.get<{ Querystring: { active?: boolean } }>('/api/holds', {
    config: AUDITOR,
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { active: { type: 'boolean' } } } },
  }, async (request) => ({ holds: svc.holds({ active: request.query.active === true }) }));

  app.post<{ Body: { case: string; reason: string; participants?: string[]; query?: string; since?: string; until?: string } }>('/api/holds', {
    config: AUDITOR,
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['case', 'reason'],
        properties: {
          case: { type: 'string', minLength: 1, maxLength: 200 },
          reason: { type: 'string', minLength: 1, maxLength: 2000 },
          participants: { type: 'array', maxItems: 200, items: { type: 'string', minLength: 1, maxLength: 320 } },
          query: { type: 'string', maxLength: 2000 },
          since: { type: 'string', pattern: DAY },
          until: { type: 'string', pattern: DAY },
        },
      },
    },
  }, async (request, reply) => {
    const b = request.body;
    const hold = await svc.placeHold({
      case: b.case, reason: b.reason, participants: b.participants ?? [], query: b.query ?? null, since: b.since ?? null, until: b.until ?? null,
    }, request.principal!.name).catch(retentionError);
    await recordAccess(deps.audit, request, {
      action: 'hold.change', target: hold.id, outcome: 'ok',
      details: {
        change: 'place', case: hold.case, reason: hold.reason, participants: hold.match.participants.join(','), query: hold.match.query,
        since: hold.match.since, until: hold.match.until, messages: hold.messages, seq: hold.seq,
      },
    });
    return reply.status(201).send({ hold });
  });

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/api/holds/:id/release', {
    config: AUDITOR,
    schema: {
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[a-z0-9-]{1,40}$' } } },
      body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } },
    },
  }, async (request) => {
    const hold = await svc.releaseHold(request.params.id, request.body.reason, request.principal!.name).catch(retentionError);
    await recordAccess(deps.audit, request, {
      action: 'hold.change', target: hold.id, outcome: 'ok', details: { change: 'release', case: hold.case, reason: request.body.reason, seq: hold.released?.seq ?? null },
    });
    return { hold };
  });
};
