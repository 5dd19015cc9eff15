import type { FastifyRequest } from 'fastify';
import type { AuditAction, AuditDetails, AuditOutcome } from '../audit/entries.js';
import type { AuditTrail } from '../audit/trail.js';
import type { Principal } from './auth.js';
import { ApiError } from './errors.js';

/** The role an entry is recorded under: the most powerful over mail that the principal holds. */
function primaryRole(p: Principal): 'auditor' | 'admin' | 'user' {
  return p.roles.includes('auditor') ? 'auditor' : p.roles.includes('admin') ? 'admin' : 'user';
}

export interface AccessRecord {
  action: AuditAction;
  target?: string | null;
  outcome: AuditOutcome;
  details?: AuditDetails;
}

/**
 * Puts one look at the archive on record, as the request's principal, and resolves once the
 * entry is durable. Routes await it before they send any mail content: if the trail cannot be
 * written, the content is not shown (503) rather than shown off the record.
 */
export async function recordAccess(audit: Pick<AuditTrail, 'record'>, request: FastifyRequest, entry: AccessRecord): Promise<void> {
  const p = request.principal;
  try {
    await audit.record({
      actor: p?.name ?? null,
      role: p ? primaryRole(p) : null,
      source: request.ip,
      action: entry.action,
      target: entry.target ?? null,
      outcome: entry.outcome,
      details: { ...entry.details, ...(p?.tokenId ? { token_id: p.tokenId } : {}), ...(p && p.roles.length > 1 ? { roles: p.roles.join('+') } : {}) },
    });
  } catch (err) {
    request.log.error({ event: 'audit.write_failed', err, action: entry.action }, 'audit entry could not be written; request refused');
    throw new ApiError(503, 'audit_unavailable', 'the audit trail cannot be written, so nothing is shown; see the server log');
  }
}
