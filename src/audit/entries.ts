import type { Chained } from '../ledger/records.js';

/**
 * Every action the audit trail records. The names are stable: auditors filter and script on
 * them, so a name is never changed or reused once released; new actions are appended.
 */
export const AUDIT_ACTIONS = [
  'session.signin',
  'session.signin_failed',
  'session.signout',
  'search',
  'message.view',
  'message.raw',
  'message.attachment',
  'export',
  'restore',
  'user.create',
  'user.update',
  'user.delete',
  'token.create',
  'token.revoke',
  'settings.change',
  'retention.change',
  'hold.change',
  'audit.read',
  'retention.run',
  'retention.explain',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_ROLES = ['auditor', 'admin', 'user'] as const;
export type AuditRole = (typeof AUDIT_ROLES)[number];

export const AUDIT_OUTCOMES = ['ok', 'denied', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** Small and flat on purpose: an entry says what was looked at, never what it contained. */
export type AuditDetails = Record<string, string | number | boolean | null>;

/** What a caller hands to record(); the trail adds seq, ts and prev. */
export interface AuditInput {
  /** Account or token name; null for an anonymous request. */
  actor: string | null;
  role: AuditRole | null;
  /** Client IP address; null when there is none (a local command). */
  source: string | null;
  action: AuditAction;
  /** What was acted on, e.g. a message id; null when nothing in particular. */
  target?: string | null;
  outcome: AuditOutcome;
  details?: AuditDetails;
}

/** The body written to the chain; field order is the order in every line. */
export interface AuditBody {
  actor: string | null;
  role: AuditRole | null;
  source: string | null;
  action: AuditAction;
  target: string | null;
  outcome: AuditOutcome;
  details: AuditDetails;
}

export type AuditEntry = Chained<AuditBody>;

export class AuditInputError extends Error {
  readonly code = 'bad_audit_entry';
}

// Keys that would put a secret or mail content on permanent record; dropped, whatever the caller
// meant. token_id and the like are fine: an id names a token, it does not unlock anything.
const FORBIDDEN_KEY = /^(password|passphrase|secret|token|authorization|cookie|body|content|raw)$/i;
const MAX_KEYS = 32;
const MAX_STRING = 2000;

/**
 * Checks an input and returns the body to append, plus the detail keys it dropped (for a
 * warning). Strings are clipped so one request cannot grow the trail by megabytes.
 */
export function toAuditBody(input: AuditInput): { body: AuditBody; dropped: string[] } {
  if (!(AUDIT_ACTIONS as readonly string[]).includes(input.action)) throw new AuditInputError(`unknown audit action ${JSON.stringify(input.action)}`);
  if (!(AUDIT_OUTCOMES as readonly string[]).includes(input.outcome)) throw new AuditInputError(`unknown audit outcome ${JSON.stringify(input.outcome)}`);
  if (input.role !== null && !(AUDIT_ROLES as readonly string[]).includes(input.role)) throw new AuditInputError(`unknown role ${JSON.stringify(input.role)}`);
  const details: AuditDetails = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(input.details ?? {})) {
    if (FORBIDDEN_KEY.test(key) || Object.keys(details).length >= MAX_KEYS) {
      dropped.push(key);
      continue;
    }
    details[key] = typeof value === 'string' ? value.slice(0, MAX_STRING) : value;
  }
  const clip = (s: string | null) => (s === null ? null : s.slice(0, MAX_STRING));
  return {
    body: {
      actor: clip(input.actor), role: input.role, source: clip(input.source), action: input.action,
      target: clip(input.target ?? null), outcome: input.outcome, details,
    },
    dropped,
  };
}
