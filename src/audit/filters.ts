import { AUDIT_ACTIONS, type AuditAction, type AuditEntry } from './entries.js';

/** Filters of `GET /api/audit` and `spindle audit`; every one is optional. */
export interface AuditQuery {
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  /** ISO date or date-time; entries at or after it. A date alone is 00:00 UTC. */
  since?: string | undefined;
  /** ISO date or date-time; entries before it (a date alone excludes that day, as `before:` in search). */
  until?: string | undefined;
  /** Page size, 1-500; default 50. */
  limit?: number | undefined;
  /** The next_cursor of the previous page. */
  cursor?: string | null | undefined;
}

export interface AuditPage {
  /** Newest first. */
  items: AuditEntry[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null;
}

/** The filters after checking, ready to bind. */
export interface NormalizedAuditQuery {
  actor?: string;
  action?: AuditAction;
  target?: string;
  since?: string;
  until?: string;
  limit: number;
  /** Entries with seq below this. */
  before?: number;
}

export class AuditQueryError extends Error {
  constructor(
    readonly code: 'bad_request' | 'bad_cursor',
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
/** For JSON schemas and CLI checks: a date, or a date-time with an optional zone (UTC if absent). */
export const ISO_INSTANT = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})?)?$';
const ISO_RE = new RegExp(ISO_INSTANT);

/** Entry ts values are Date.toISOString(), so a normalised instant compares correctly as text. */
export function parseInstant(value: string, name: string): string {
  const m = ISO_RE.exec(value);
  const day = value.slice(0, 10);
  const date = m ? new Date(m[1] && !m[4] ? `${value}Z` : value) : null;
  // Date rolls 2024-02-31 over into March; the round trip of the day catches that.
  const realDay = new Date(`${day}T00:00:00Z`);
  if (!date || Number.isNaN(date.getTime()) || Number.isNaN(realDay.getTime()) || realDay.toISOString().slice(0, 10) !== day) {
    throw new AuditQueryError('bad_request', `${name} must be an ISO date or date-time (2024-03-05, 2024-03-05T10:00:00Z), got ${JSON.stringify(value)}`);
  }
  return date.toISOString();
}

export function normalizeAuditQuery(q: AuditQuery): NormalizedAuditQuery {
  const out: NormalizedAuditQuery = { limit: Math.min(Math.max(Math.trunc(q.limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT) };
  if (q.actor !== undefined) out.actor = q.actor;
  if (q.target !== undefined) out.target = q.target;
  if (q.action !== undefined) {
    if (!(AUDIT_ACTIONS as readonly string[]).includes(q.action)) {
      throw new AuditQueryError('bad_request', `action must be one of ${AUDIT_ACTIONS.join(', ')}`);
    }
    out.action = q.action as AuditAction;
  }
  if (q.since !== undefined) out.since = parseInstant(q.since, 'since');
  if (q.until !== undefined) out.until = parseInstant(q.until, 'until');
  if (q.cursor !== undefined && q.cursor !== null) {
    if (!/^[1-9]\d{0,15}$/.test(q.cursor)) throw new AuditQueryError('bad_cursor', 'cursor is not one this server issued; start again without it');
    out.before = Number(q.cursor);
  }
  return out;
}
