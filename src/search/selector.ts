import type { HoldSelector, MailSelector } from '../ledger/records.js';
import { compileQuery } from './query.js';

/** An SQL condition on `m` (a row of messages) and its parameters, given the id range being scanned. */
export interface SelectorSql {
  sql: string;
  params: (lo: number, hi: number) => unknown[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Splits participants into whole addresses and domains (`example.com` or `@example.com`). */
export function splitParticipants(list: readonly string[]): { addresses: string[]; domains: string[] } {
  const addresses: string[] = [];
  const domains: string[] = [];
  for (const raw of list) {
    const p = raw.trim().toLowerCase();
    if (!p) continue;
    if (p.startsWith('@')) domains.push(p.slice(1));
    else if (p.includes('@')) addresses.push(p);
    else domains.push(p);
  }
  return { addresses, domains };
}

/** Midnight UTC of a YYYY-MM-DD day, in ms; throws on anything else. */
export function dayStart(day: string): number {
  const ms = DAY.test(day) ? Date.parse(`${day}T00:00:00Z`) : NaN;
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== day) throw new RangeError(`not a date (YYYY-MM-DD): ${day}`);
  return ms;
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/**
 * Compiles what a retention rule or a legal hold selects into SQL over the messages table, for one
 * range of message ids at a time (so a purge walks a large archive in small steps):
 * - participants: any address in the participants table (From, Sender, To, Cc, Bcc, envelope
 *   recipients) or the envelope sender, by whole address or by domain (exactly: example.com does
 *   not cover sub.example.com);
 * - query: the search query language, compiled and quoted exactly as for search;
 * - since/until (holds): the message date, as search shows and sorts it.
 * Every part given must match. Throws QueryError for a malformed query.
 */
export function selectorSql(sel: MailSelector & Partial<Pick<HoldSelector, 'since' | 'until'>>): SelectorSql {
  const parts: string[] = [];
  const fixed: Array<(lo: number, hi: number) => unknown[]> = [];
  const { addresses, domains } = splitParticipants(sel.participants);
  if (addresses.length + domains.length > 0) {
    const byAddress = addresses.length ? `address IN (${marks(addresses.length)})` : '0';
    const byDomain = domains.length ? `substr(address, instr(address, '@') + 1) IN (${marks(domains.length)})` : '0';
    const env = "lower(coalesce(m.envelope_sender, ''))";
    const envAddress = addresses.length ? `${env} IN (${marks(addresses.length)})` : '0';
    const envDomain = domains.length ? `substr(${env}, instr(${env}, '@') + 1) IN (${marks(domains.length)})` : '0';
    parts.push(`(m.id IN (SELECT message FROM participants WHERE message BETWEEN ? AND ? AND (${byAddress} OR ${byDomain})) OR ${envAddress} OR ${envDomain})`);
    fixed.push((lo, hi) => [lo, hi, ...addresses, ...domains, ...addresses, ...domains]);
  }
  if (sel.query !== null && sel.query.trim() !== '') {
    const c = compileQuery(sel.query);
    if (c.match !== null) {
      const match = c.match;
      parts.push('m.id IN (SELECT rowid FROM message_fts WHERE message_fts MATCH ? AND rowid BETWEEN ? AND ?)');
      fixed.push((lo, hi) => [match, lo, hi]);
    }
    if (c.minId !== null) {
      const min = c.minId;
      parts.push('m.id >= ?');
      fixed.push(() => [min]);
    }
    if (c.maxIdExclusive !== null) {
      const max = c.maxIdExclusive;
      parts.push('m.id < ?');
      fixed.push(() => [max]);
    }
    for (const mid of c.messageIds) {
      parts.push('m.message_id = ?');
      fixed.push(() => [mid]);
    }
  }
  if (sel.since) {
    const since = dayStart(sel.since);
    parts.push('m.sort_time >= ?');
    fixed.push(() => [since]);
  }
  if (sel.until) {
    const until = dayStart(sel.until);
    parts.push('m.sort_time < ?');
    fixed.push(() => [until]);
  }
  return {
    sql: parts.length ? parts.join(' AND ') : '1',
    params: (lo, hi) => fixed.flatMap((f) => f(lo, hi)),
  };
}
