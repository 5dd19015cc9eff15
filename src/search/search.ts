import type { Db } from '../db/database.js';
import { compileQuery, type CompiledQuery } from './query.js';

export interface SearchHit {
  id: number;
  date: string;
  from: { address: string; name: string };
  to: Array<{ address: string; name: string }>;
  subject: string;
  /** Body excerpt around the matches, plain text. */
  snippet: string;
  /** [start, end) character ranges of snippet that matched. */
  highlights: Array<[number, number]>;
  size: number;
  attachments: number;
}

export interface SearchResult {
  total: number;
  items: SearchHit[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export interface SearchOptions {
  limit: number;
  cursor?: string | null | undefined;
  /**
   * Only messages in which one of this account's addresses takes part (role user); null or absent:
   * all mail. The restriction is part of the SQL of both the count and the page.
   */
  scope?: { userId: number } | null;
}

/**
 * Columns a scoped search may match: not Bcc and envelope recipients, which would tell a
 * participant who else was secretly sent the message. FTS5 intersects nested column filters, so
 * `bcc:x` inside this filter matches nothing.
 */
export const SCOPED_COLUMNS = '{subject sender rcpt_to rcpt_cc body attachments flags}';

export class CursorError extends Error {
  readonly code = 'bad_cursor';
}

const MARK_OPEN = '\u0002';
const MARK_CLOSE = '\u0003';

/** Splits FTS5 snippet() output into plain text and highlight ranges, so no markup is ever built from mail. */
export function splitSnippet(marked: string): { snippet: string; highlights: Array<[number, number]> } {
  let snippet = '';
  const highlights: Array<[number, number]> = [];
  let start = -1;
  for (const ch of marked) {
    if (ch === MARK_OPEN) start = snippet.length;
    else if (ch === MARK_CLOSE) {
      if (start >= 0 && snippet.length > start) highlights.push([start, snippet.length]);
      start = -1;
    } else snippet += ch;
  }
  return { snippet, highlights };
}

function decodeCursor(cursor: string): number {
  if (!/^\d{1,16}$/.test(cursor)) throw new CursorError('cursor is not one this server issued; start again without it');
  return Number(cursor);
}

export interface Searcher {
  search(query: string, opts: SearchOptions): SearchResult;
  compile(query: string): CompiledQuery;
}

/**
 * Runs compiled queries. Results come newest first by walking the FTS rowid (the message id is
 * date-derived) downwards, so the first page stops early however many documents match; the
 * cursor is the last id returned (keyset pagination, stable while mail arrives).
 */
export function createSearcher(db: Db): Searcher {
  const toOf = db.prepare("SELECT address, name FROM recipients WHERE message = ? AND kind = 'to' ORDER BY address");
  const messageRow = db.prepare(`SELECT id, sort_time, date, from_addr, from_name, subject, size, attachment_count FROM messages WHERE id = ?`);
  const bodyStart = db.prepare(`SELECT substr(body, 1, 200) AS body FROM message_fts WHERE rowid = ?`).pluck();
  const cache = new Map<string, import('better-sqlite3').Statement>();
  const prepared = (sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      if (cache.size > 200) cache.clear();
      cache.set(sql, stmt);
    }
    return stmt;
  };

  function conditions(c: CompiledQuery, idCol: string, params: unknown[], scope: { userId: number } | null): string[] {
    const where: string[] = [];
    if (scope) {
      where.push(`${idCol} IN (SELECT p.message FROM user_addresses ua JOIN participants p ON p.address = ua.address WHERE ua.user = ?)`);
      params.push(scope.userId);
    }
    if (c.minId !== null) {
      where.push(`${idCol} >= ?`);
      params.push(c.minId);
    }
    if (c.maxIdExclusive !== null) {
      where.push(`${idCol} < ?`);
      params.push(c.maxIdExclusive);
    }
    for (const mid of c.messageIds) {
      where.push(`${idCol} IN (SELECT id FROM messages WHERE message_id = ?)`);
      params.push(mid);
    }
    return where;
  }

  function search(query: string, opts: SearchOptions): SearchResult {
    const c = compileQuery(query);
    const limit = Math.max(1, Math.min(opts.limit, 500));
    const before = opts.cursor ? decodeCursor(opts.cursor) : null;
    const countParams: unknown[] = [];
    const pageParams: unknown[] = [];
    let total: number;
    let rows: Array<{ id: number; marked: string | null }>;
    const scope = opts.scope ?? null;
    if (c.match !== null) {
      const base = ['message_fts MATCH ?', ...conditions(c, 'rowid', countParams, scope)];
      countParams.unshift(scope ? `${SCOPED_COLUMNS} : (${c.match})` : c.match);
      total = prepared(`SELECT count(*) FROM message_fts WHERE ${base.join(' AND ')}`).pluck().get(...countParams) as number;
      pageParams.push(...countParams);
      const page = [...base];
      if (before !== null) {
        page.push('rowid < ?');
        pageParams.push(before);
      }
      pageParams.push(limit + 1);
      rows = prepared(`SELECT rowid AS id, snippet(message_fts, 6, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 24) AS marked
        FROM message_fts WHERE ${page.join(' AND ')} ORDER BY rowid DESC LIMIT ?`).all(...pageParams) as typeof rows;
    } else {
      const base = conditions(c, 'id', countParams, scope);
      const where = (w: string[]) => (w.length ? `WHERE ${w.join(' AND ')}` : '');
      total = prepared(`SELECT count(*) FROM messages ${where(base)}`).pluck().get(...countParams) as number;
      pageParams.push(...countParams);
      const page = [...base];
      if (before !== null) {
        page.push('id < ?');
        pageParams.push(before);
      }
      pageParams.push(limit + 1);
      rows = prepared(`SELECT id, NULL AS marked FROM messages ${where(page)} ORDER BY id DESC LIMIT ?`).all(...pageParams) as typeof rows;
    }
    const more = rows.length > limit;
    const items = rows.slice(0, limit).map((r): SearchHit => {
      const m = messageRow.get(r.id) as {
        id: number; sort_time: number; date: string | null; from_addr: string; from_name: string;
        subject: string; size: number; attachment_count: number;
      };
      const marked = r.marked ?? ((bodyStart.get(r.id) as string | undefined) ?? '').replace(/\s+/g, ' ');
      const { snippet, highlights } = splitSnippet(marked);
      return {
        id: m.id,
        date: new Date(m.sort_time).toISOString(),
        from: { address: m.from_addr, name: m.from_name },
        to: toOf.all(m.id) as Array<{ address: string; name: string }>,
        subject: m.subject,
        snippet,
        highlights,
        size: m.size,
        attachments: m.attachment_count,
      };
    });
    return { total, items, next_cursor: more && items.length > 0 ? String(items.at(-1)!.id) : null };
  }

  return { search, compile: compileQuery };
}
