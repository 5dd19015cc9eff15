import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AuditDetails } from '../../audit/entries.js';
import type { RuleInfo } from '../../db/retention-reader.js';
import type { VerifyReport } from '../../integrity/verify.js';
import { parseAsOf, RetentionError } from '../../retention/inputs.js';
import { formatPeriod } from '../../retention/period.js';
import { purgeAuditDetails, type RetentionService } from '../../retention/service.js';
import type { AppDeps } from '../app.js';
import { recordAccess } from '../audit-record.js';
import { ApiError } from '../errors.js';

/** What the retention, hold and integrity routes need from the running archive. */
export interface RetentionApi {
  service: RetentionService;
  nextRun: () => Date | null;
  /** verify, off the event loop; `sample` blobs re-hashed, or all of them (null). */
  verify: (sample: number | null) => Promise<VerifyReport>;
}

const STATUS: Record<RetentionError['code'], number> = {
  bad_rule: 400, bad_hold: 400, bad_as_of: 400, no_such_rule: 404, no_such_hold: 404, hold_released: 409, purge_running: 409,
};

/** The API's error for a refused retention request; anything else is rethrown. */
export function retentionError(err: unknown): never {
  if (err instanceof RetentionError) throw new ApiError(STATUS[err.code], err.code, err.message);
  throw err;
}

export const ruleView = (r: RuleInfo) => ({
  id: r.id, name: r.name, participants: r.match.participants, query: r.match.query, period: formatPeriod(r.period), from: r.from,
  created_by: r.created_by, created_at: r.created_at || null, seq: r.seq,
});

const ADMIN = { access: { roles: ['admin'] as const } };
const READERS = { access: { roles: ['admin', 'auditor'] as const } };
const DAY = '^\\d{4}-\\d{2}-\\d{2}$';
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[a-z0-9-]{1,40}$' } } } as const;

/** Retention rules, explain, purge runs (admin; reading also auditor). Every change is ledgered and audited. */
export const retentionRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const api = deps.retention!;
  const svc = api.service;
  const audited = (request: FastifyRequest, action: 'retention.change' | 'retention.run', target: string | null, details: AuditDetails, outcome: 'ok' | 'failed' = 'ok') =>
    recordAccess(deps.audit, request, { action, target, outcome, details });

  app.get('/api/retention/rules', { config: READERS }, async () => ({ rules: svc.rules().map(ruleView) }));

  app.post<{ Body: { name?: string; participants?: string[]; query?: string; period: string; from?: 'arrival' | 'date'; default?: boolean } }>('/api/retention/rules', {
    config: ADMIN,
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['period'],
        properties: {
          name: { type: 'string', maxLength: 200 },
          participants: { type: 'array', maxItems: 200, items: { type: 'string', minLength: 1, maxLength: 320 } },
          query: { type: 'string', maxLength: 2000 },
          period: { type: 'string', minLength: 2, maxLength: 20 },
          from: { type: 'string', enum: ['arrival', 'date'] },
          default: { type: 'boolean' },
        },
      },
    },
  }, async (request, reply) => {
    const b = request.body;
    const actor = request.principal!.name;
    const rule = await svc.addRule({
      period: b.period, ...(b.name !== undefined ? { name: b.name } : {}), ...(b.participants ? { participants: b.participants } : {}),
      ...(b.query !== undefined ? { query: b.query } : {}), ...(b.from ? { from: b.from } : {}), isDefault: b.default === true,
    }, actor).catch(retentionError);
    await audited(request, 'retention.change', rule.id, {
      change: 'add', name: rule.name, participants: rule.match.participants.join(','), query: rule.match.query, period: formatPeriod(rule.period), from: rule.from, seq: rule.seq,
    });
    return reply.status(201).send({ rule: ruleView(rule) });
  });

  app.delete<{ Params: { id: string } }>('/api/retention/rules/:id', { config: ADMIN, schema: { params: idParams } }, async (request) => {
    const rule = await svc.removeRule(request.params.id, request.principal!.name).catch(retentionError);
    await audited(request, 'retention.change', rule.id, { change: 'remove', name: rule.name, period: formatPeriod(rule.period) });
    return { removed: ruleView(rule), rules: svc.rules().map(ruleView) };
  });

  app.get<{ Params: { id: number }; Querystring: { as_of?: string } }>('/api/retention/explain/:id', {
    config: READERS,
    schema: {
      params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 0 } } },
      querystring: { type: 'object', additionalProperties: false, properties: { as_of: { type: 'string', pattern: DAY } } },
    },
  }, async (request) => {
    let asOf: Date;
    try {
      asOf = parseAsOf(request.query.as_of, new Date(), { realPurge: false });
    } catch (err) {
      return retentionError(err);
    }
    const explanation = svc.explain(request.params.id, asOf);
    // Message metadata (Message-ID, dates) is on record like any look at mail.
    await recordAccess(deps.audit, request, {
      action: 'retention.explain', target: String(request.params.id), outcome: explanation ? 'ok' : 'failed',
      details: explanation ? { status: explanation.status } : { error: 'not_found' },
    });
    if (!explanation) throw new ApiError(404, 'not_found', `no message ${request.params.id}`);
    return explanation;
  });

  app.post<{ Body: { dry_run: boolean; as_of?: string } }>('/api/retention/run', {
    config: ADMIN,
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['dry_run'],
        properties: { dry_run: { type: 'boolean' }, as_of: { type: 'string', pattern: DAY } },
      },
    },
  }, async (request) => {
    const { dry_run: dryRun } = request.body;
    let asOf: Date;
    try {
      asOf = parseAsOf(request.body.as_of, new Date(), { realPurge: !dryRun });
    } catch (err) {
      await audited(request, 'retention.run', null, { dry_run: dryRun, as_of: request.body.as_of ?? null, error: 'bad_as_of' }, 'failed');
      return retentionError(err);
    }
    const report = dryRun ? await svc.plan(asOf) : await svc.run({ asOf, actor: request.principal!.name }).catch(retentionError);
    await audited(request, 'retention.run', report.run, purgeAuditDetails(report));
    return report;
  });

  app.get<{ Querystring: { limit?: number } }>('/api/retention/runs', {
    config: READERS,
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } } },
  }, async (request) => ({
    runs: svc.runs(request.query.limit ?? 50),
    running: svc.running(),
    pending_blob_deletions: svc.pendingBlobs(),
    next_scheduled_run: api.nextRun()?.toISOString() ?? null,
  }));
};
