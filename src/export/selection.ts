import type { Db } from '../db/database.js';
import { compileQuery, QueryError, type CompiledQuery } from '../search/query.js';
import { SCOPED_COLUMNS } from '../search/search.js';

/** What to export: a search (the query language of docs/search.md), mailboxes, or a whole domain. */
export type SelectionSpec = { query: string } | { mailbox: string[] } | { domain: string };

export interface SelectionRequest {
  spec: SelectionSpec;
  /** YYYY-MM-DD (UTC): messages dated on or after this day, as the query language's after:. */
  after?: string | null | undefined;
  /** YYYY-MM-DD (UTC): messages dated before this day (excluded), as before:. */
  before?: string | null | undefined;
  /** Only mail in which one of this account's addresses takes part (role user); null: all mail. */
  scope?: { userId: number } | null | undefined;
  /** Oldest first (the default: an mbox reads like a mailbox) or newest first. */
  order?: 'oldest' | 'newest';
}

export class SelectionError extends Error {
  constructor(readonly code: 'bad_query' | 'bad_selection', message: string) {
    super(message);
  }
}

/**
 * Flat, for audit details and the manifest: exactly one of `query`, `mailbox` (addresses joined by
 * commas) and `domain`, then `after` and `before` (null when not given).
 */
export type SelectionSummary = Record<string, string | null>;

export interface Selection {
  /** How many messages the export holds, counted before the first one is read. */
  readonly count: number;
  readonly summary: SelectionSummary;
  /**
   * Message ids in export order, a page at a time (keyset pagination on the date-derived id), so
   * memory does not grow with the export. Only messages indexed when the count was taken are
   * included: mail arriving during a long export does not change it.
   */
  pages(pageSize?: number): Generator<number[]>;
}

const MAX_ADDRESSES = 100;
const ADDRESS = /^[^\s<>@]+@[^\s<>@]+$/;
const DOMAIN = /^[^\s<>@,;"'\\/]{1,253}$/;
const DAY = /^\d{4}[-/]\d{1,2}[-/]\d{1,2}$/;

/** The id bound of a day flag, by the query language's own date rules (so --after means after:). */
function dayBound(flag: 'after' | 'before', value: string): number {
  if (!DAY.test(value)) throw new SelectionError('bad_selection', `${flag} expects a date like 2024-03-01, got ${JSON.stringify(value)}`);
  try {
    const c = compileQuery(`${flag}:${value}`);
    return (flag === 'after' ? c.minId : c.maxIdExclusive)!;
  } catch (err) {
    if (err instanceof QueryError) throw new SelectionError('bad_selection', `${flag}: ${JSON.stringify(value)} is not a date`);
    throw err;
  }
}

export function normalizeMailboxes(list: string[]): string[] {
  const addresses = [...new Set(list.map((a) => a.trim().replace(/^<(.*)>$/, '$1').toLowerCase()).filter(Boolean))];
  if (addresses.length === 0) throw new SelectionError('bad_selection', 'mailbox: give at least one address');
  if (addresses.length > MAX_ADDRESSES) throw new SelectionError('bad_selection', `mailbox: at most ${MAX_ADDRESSES} addresses`);
  const bad = addresses.find((a) => !ADDRESS.test(a));
  if (bad !== undefined) throw new SelectionError('bad_selection', `mailbox: ${JSON.stringify(bad)} is not an address`);
  return addresses;
}

export function normalizeDomain(value: string): string {
  const domain = value.trim().replace(/^@/, '').toLowerCase();
  if (!DOMAIN.test(domain)) throw new SelectionError('bad_selection', `domain: ${JSON.stringify(value)} is not a domain`);
  return domain;
}

/** SQL conditions on one id column, and their parameters; user text is only ever a parameter. */
interface Filters {
  where(id: string): string[];
  params: unknown[];
}

function buildFilters(c: Pick<CompiledQuery, 'minId' | 'maxIdExclusive' | 'messageIds'>, scope: { userId: number } | null, snapshotSeq: number): Filters {
  const params: unknown[] = [];
  const parts: Array<(id: string) => string> = [];
  const add = (sql: (id: string) => string, value: unknown) => {
    parts.push(sql);
    params.push(value);
  };
  if (c.minId !== null) add((id) => `${id} >= ?`, c.minId);
  if (c.maxIdExclusive !== null) add((id) => `${id} < ?`, c.maxIdExclusive);
  for (const mid of c.messageIds) add((id) => `${id} IN (SELECT id FROM messages WHERE message_id = ?)`, mid);
  // The same restriction as search.ts, as a correlated EXISTS: one index probe per candidate
  // instead of materialising the account's whole mailbox again for every page.
  if (scope) add((id) => `EXISTS (SELECT 1 FROM participants sp JOIN user_addresses ua ON ua.address = sp.address WHERE sp.message = ${id} AND ua.user = ?)`, scope.userId);
  add((id) => `EXISTS (SELECT 1 FROM messages sm WHERE sm.id = ${id} AND sm.first_seq <= ?)`, snapshotSeq);
  return { where: (id) => parts.map((p) => p(id)), params };
}

interface Plan {
  count: { sql: string; params: unknown[] };
  /** A page after `cursor`; the caller appends cursor and limit where the SQL has `?` for them. */
  page(cursor: number, limit: number): { sql: string; params: unknown[] };
}

/**
 * Turns a request into SQL. Mailboxes walk the participants primary key (address, message) one
 * address at a time, each branch limited to the page size before they are merged, so a page
 * costs O(addresses × page) however large the mailbox. A domain is an exact suffix match on the
 * participant address, checked per message while walking messages by id (one pass in total).
 */
function plan(req: SelectionRequest, snapshotSeq: number): { plan: Plan; summary: SelectionSummary } {
  const asc = (req.order ?? 'oldest') === 'oldest';
  const [cmp, dir] = asc ? ['>', 'ASC'] : ['<', 'DESC'];
  const scope = req.scope ?? null;
  let c: Pick<CompiledQuery, 'match' | 'minId' | 'maxIdExclusive' | 'messageIds'> = { match: null, minId: null, maxIdExclusive: null, messageIds: [] };
  const summary: SelectionSummary = {};
  if ('query' in req.spec) {
    try {
      c = compileQuery(req.spec.query);
    } catch (err) {
      if (err instanceof QueryError) throw new SelectionError('bad_query', err.message);
      throw err;
    }
    summary.query = req.spec.query;
  }
  if (req.after) {
    const min = dayBound('after', req.after);
    c = { ...c, minId: c.minId === null ? min : Math.max(c.minId, min) };
  }
  if (req.before) {
    const max = dayBound('before', req.before);
    c = { ...c, maxIdExclusive: c.maxIdExclusive === null ? max : Math.min(c.maxIdExclusive, max) };
  }
  if (c.minId !== null && c.maxIdExclusive !== null && c.minId >= c.maxIdExclusive) {
    throw new SelectionError('bad_selection', 'after must be earlier than before');
  }
  const f = buildFilters(c, scope, snapshotSeq);

  if ('mailbox' in req.spec) {
    const addresses = normalizeMailboxes(req.spec.mailbox);
    summary.mailbox = addresses.join(',');
    const branch = (paged: boolean) =>
      `SELECT pa.message FROM participants pa WHERE ${['pa.address = ?', ...f.where('pa.message'), ...(paged ? [`pa.message ${cmp} ?`] : [])].join(' AND ')}` +
      (paged ? ` ORDER BY pa.message ${dir} LIMIT ?` : '');
    const union = (paged: boolean) => addresses.map(() => (paged ? `SELECT message FROM (${branch(true)})` : branch(false))).join(' UNION ');
    return {
      summary,
      plan: {
        count: { sql: `SELECT count(*) FROM (${union(false)})`, params: addresses.flatMap((a) => [a, ...f.params]) },
        page: (cursor, limit) => ({
          sql: `SELECT message AS id FROM (${union(true)}) ORDER BY message ${dir} LIMIT ?`,
          params: [...addresses.flatMap((a) => [a, ...f.params, cursor, limit]), limit],
        }),
      },
    };
  }

  if (c.match !== null) {
    const match = scope ? `${SCOPED_COLUMNS} : (${c.match})` : c.match;
    const where = ['message_fts MATCH ?', ...f.where('message_fts.rowid')];
    return {
      summary,
      plan: {
        count: { sql: `SELECT count(*) FROM message_fts WHERE ${where.join(' AND ')}`, params: [match, ...f.params] },
        page: (cursor, limit) => ({
          sql: `SELECT message_fts.rowid AS id FROM message_fts WHERE ${where.join(' AND ')} AND message_fts.rowid ${cmp} ? ORDER BY message_fts.rowid ${dir} LIMIT ?`,
          params: [match, ...f.params, cursor, limit],
        }),
      },
    };
  }

  const where = f.where('m.id');
  const params = [...f.params];
  if ('domain' in req.spec) {
    const domain = normalizeDomain(req.spec.domain);
    summary.domain = domain;
    // An exact suffix: `example.com` is not `badexample.com` nor `sub.example.com`. No LIKE, so
    // no wildcard in user text can widen it.
    where.unshift('EXISTS (SELECT 1 FROM participants dp WHERE dp.message = m.id AND substr(dp.address, -?) = ?)');
    params.unshift(domain.length + 1, `@${domain}`);
  }
  const clause = (extra: string[]) => (where.length + extra.length ? `WHERE ${[...where, ...extra].join(' AND ')}` : '');
  return {
    summary,
    plan: {
      count: { sql: `SELECT count(*) FROM messages m ${clause([])}`, params },
      page: (cursor, limit) => ({
        sql: `SELECT m.id AS id FROM messages m ${clause([`m.id ${cmp} ?`])} ORDER BY m.id ${dir} LIMIT ?`,
        params: [...params, cursor, limit],
      }),
    },
  };
}

/** Validates the request, counts, and returns the keyset-paged walk over the matching ids. */
export function selectMessages(db: Db, req: SelectionRequest): Selection {
  // Everything indexed so far: the indexer applies ledger records in seq order and records the
  // last one in the same transaction, so messages first archived later have a larger first_seq.
  const snapshotSeq = db.prepare(`SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_seq'),
    (SELECT max(first_seq) FROM messages), 0)`).pluck().get() as number;
  const { plan: p, summary } = plan(req, snapshotSeq);
  const count = db.prepare(p.count.sql).pluck().get(...p.count.params) as number;
  const asc = (req.order ?? 'oldest') === 'oldest';
  return {
    count,
    summary: { ...summary, after: req.after ?? null, before: req.before ?? null },
    *pages(pageSize = 500) {
      let cursor = asc ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
      const first = p.page(cursor, pageSize);
      const stmt = db.prepare(first.sql).pluck();
      for (;;) {
        const ids = stmt.all(...p.page(cursor, pageSize).params) as number[];
        if (ids.length === 0) return;
        yield ids;
        if (ids.length < pageSize) return;
        cursor = ids[ids.length - 1]!;
      }
    },
  };
}
