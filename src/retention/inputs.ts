import { randomBytes } from 'node:crypto';
import type { HoldSpec, RetentionRule } from '../ledger/records.js';
import { QueryError } from '../search/query.js';
import { dayStart, selectorSql } from '../search/selector.js';
import { parsePeriod, PeriodError } from './period.js';

/** A request the retention service refuses, with a stable code (the API maps it to a status). */
export class RetentionError extends Error {
  constructor(readonly code: 'bad_rule' | 'bad_hold' | 'no_such_rule' | 'no_such_hold' | 'hold_released' | 'purge_running' | 'bad_as_of', message: string) {
    super(message);
  }
}

export interface RuleInput {
  name?: string;
  /** Addresses or domains; any participant matches. */
  participants?: string[];
  query?: string | null;
  /** '90d', '18m', '7y' or 'forever'. */
  period: string;
  from?: 'arrival' | 'date';
  /** Sets the default (no selector; applies when no other rule matches). */
  isDefault?: boolean;
}

export interface HoldInput {
  case: string;
  reason: string;
  participants?: string[];
  query?: string | null;
  since?: string | null;
  until?: string | null;
}

const ADDRESS_OR_DOMAIN = /^(?:[^\s@]+@|@)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const newId = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;

function participants(list: readonly string[] | undefined, kind: 'bad_rule' | 'bad_hold'): string[] {
  const out = [...new Set((list ?? []).map((p) => p.trim().toLowerCase()).filter(Boolean))];
  if (out.length > 200) throw new RetentionError(kind, 'at most 200 addresses or domains');
  for (const p of out) {
    if (p.length > 320 || !ADDRESS_OR_DOMAIN.test(p)) throw new RetentionError(kind, `not an address or a domain: ${JSON.stringify(p)}`);
  }
  return out;
}

function query(text: string | null | undefined, kind: 'bad_rule' | 'bad_hold'): string | null {
  const q = text?.trim() ? text.trim() : null;
  if (q === null) return null;
  try {
    selectorSql({ participants: [], query: q });
  } catch (err) {
    if (err instanceof QueryError) throw new RetentionError(kind, `bad query: ${err.message}`);
    throw err;
  }
  return q;
}

/** Checks a rule request and gives the rule to ledger (a new id, or 'default'). */
export function ruleFromInput(input: RuleInput): RetentionRule {
  let period;
  try {
    period = parsePeriod(input.period);
  } catch (err) {
    if (err instanceof PeriodError) throw new RetentionError('bad_rule', err.message);
    throw err;
  }
  const from = input.from ?? 'arrival';
  if (input.isDefault) {
    if (input.participants?.length || input.query) throw new RetentionError('bad_rule', 'the default rule applies to all mail no other rule matches: it takes no addresses or query');
    return { id: 'default', name: input.name?.trim() || 'Default', match: { participants: [], query: null }, period, from };
  }
  const match = { participants: participants(input.participants, 'bad_rule'), query: query(input.query, 'bad_rule') };
  if (match.participants.length === 0 && match.query === null) {
    throw new RetentionError('bad_rule', 'a rule needs addresses/domains or a query (to change what applies to all other mail, set the default)');
  }
  const name = input.name?.trim() || [...match.participants, match.query ?? ''].filter(Boolean).join(' ').slice(0, 100);
  return { id: newId('r'), name: name.slice(0, 200), match, period, from };
}

/** Checks a hold request and gives the hold to ledger. */
export function holdFromInput(input: HoldInput): HoldSpec {
  const caseName = input.case.trim();
  if (!caseName || caseName.length > 200) throw new RetentionError('bad_hold', 'a hold needs a case name (up to 200 characters)');
  if (!input.reason.trim()) throw new RetentionError('bad_hold', 'a hold needs a reason');
  const day = (d: string | null | undefined, what: string): string | null => {
    if (!d) return null;
    try {
      dayStart(d);
    } catch {
      throw new RetentionError('bad_hold', `${what} must be a date YYYY-MM-DD, not ${JSON.stringify(d)}`);
    }
    return d;
  };
  const since = day(input.since, 'since');
  const until = day(input.until, 'until');
  if (since && until && since >= until) throw new RetentionError('bad_hold', 'since must be before until');
  return {
    id: newId('h'), case: caseName,
    match: { participants: participants(input.participants, 'bad_hold'), query: query(input.query, 'bad_hold'), since, until },
  };
}

/**
 * An as-of date (YYYY-MM-DD) as 00:00 UTC of that day; absent: now. A real purge may not look
 * ahead of now: it would delete mail before its time. Dry runs and explain may.
 */
export function parseAsOf(value: string | undefined, now: Date, opts: { realPurge: boolean }): Date {
  if (value === undefined) return now;
  const at = new Date(`${value}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || !Number.isFinite(at.getTime()) || at.toISOString().slice(0, 10) !== value) {
    throw new RetentionError('bad_as_of', `as-of must be a date YYYY-MM-DD, not ${JSON.stringify(value)}`);
  }
  if (opts.realPurge && at.getTime() > now.getTime()) {
    throw new RetentionError('bad_as_of', 'a purge cannot run as of a future date (it would delete mail early); plan ahead with a dry run');
  }
  return at;
}
