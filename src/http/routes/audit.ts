import type { FastifyPluginAsync } from 'fastify';
import { AUDIT_ACTIONS } from '../../audit/entries.js';
import { AuditQueryError, ISO_INSTANT, MAX_LIMIT } from '../../audit/filters.js';
import type { AppDeps } from '../app.js';
import type { Access } from '../auth.js';
import { recordAccess } from '../audit-record.js';
import { ApiError } from '../errors.js';

/** Who may read the trail. Declared as data so new roles (or sessions) are one edit here. */
export const AUDIT_READ_ACCESS: Access = { roles: ['auditor', 'admin'] };

const nullableString = { type: ['string', 'null'] } as const;

const entrySchema = {
  type: 'object',
  properties: {
    seq: { type: 'integer' }, ts: { type: 'string' }, prev: { type: 'string' },
    actor: nullableString, role: nullableString, source: nullableString,
    action: { type: 'string' }, target: nullableString, outcome: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

interface AuditQuerystring {
  actor?: string; action?: string; target?: string; since?: string; until?: string; limit?: number; cursor?: string;
}

export const auditRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get<{ Querystring: AuditQuerystring }>('/api/audit', {
    config: { access: AUDIT_READ_ACCESS },
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          actor: { type: 'string', maxLength: 200 },
          action: { type: 'string', enum: [...AUDIT_ACTIONS] },
          target: { type: 'string', maxLength: 200 },
          since: { type: 'string', pattern: ISO_INSTANT },
          until: { type: 'string', pattern: ISO_INSTANT },
          limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 50 },
          cursor: { type: 'string', maxLength: 32 },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: { next_cursor: nullableString, items: { type: 'array', items: entrySchema } },
        },
      },
    },
  }, async (request) => {
    let page;
    try {
      page = await deps.audit.query(request.query);
    } catch (err) {
      if (err instanceof AuditQueryError) throw new ApiError(400, err.code, err.message);
      throw err;
    }
    // Reading the trail is a look at who saw what, so it goes on the trail too.
    const { limit: _limit, ...asked } = request.query;
    await recordAccess(deps.audit, request, { action: 'audit.read', outcome: 'ok', details: { ...asked, returned: page.items.length } });
    return page;
  });
};
