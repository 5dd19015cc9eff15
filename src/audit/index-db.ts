import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/database.js';
import { readLines } from '../ledger/segments.js';
import type { AuditDetails, AuditEntry } from './entries.js';
import { normalizeAuditQuery, type AuditPage, type AuditQuery, type NormalizedAuditQuery } from './filters.js';

export const AUDIT_INDEXED_KEY = 'audit_indexed_seq';

/** The derived `audit` table: written from chain commits, read by the API and the CLI. */
export interface AuditIndex {
  /** The last chain seq the table holds (0 when none). */
  indexedSeq(): number;
  /** Adds committed entries, in seq order, in one transaction. */
  apply(entries: AuditEntry[]): void;
  query(filters: AuditQuery): AuditPage;
}

interface AuditRow {
  seq: number; ts: string; prev: string; actor: string | null; role: AuditEntry['role']; source: string | null;
  action: AuditEntry['action']; target: string | null; outcome: AuditEntry['outcome']; details: string;
}

const COLUMNS = 'seq, ts, prev, actor, role, source, action, target, outcome, details';

// Each filter is a fixed SQL fragment with one bound parameter: no user text ever becomes SQL.
const FILTERS: Array<{ key: keyof Omit<NormalizedAuditQuery, 'limit'>; sql: string }> = [
  { key: 'actor', sql: 'actor = ?' },
  { key: 'action', sql: 'action = ?' },
  { key: 'target', sql: 'target = ?' },
  { key: 'since', sql: 'ts >= ?' },
  { key: 'until', sql: 'ts < ?' },
  { key: 'before', sql: 'seq < ?' },
];

const toEntry = (r: AuditRow): AuditEntry => ({
  seq: r.seq, ts: r.ts, prev: r.prev, actor: r.actor, role: r.role, source: r.source, action: r.action,
  target: r.target, outcome: r.outcome, details: JSON.parse(r.details) as AuditDetails,
});

export function createAuditIndex(db: Db): AuditIndex {
  const indexedSeq = db.prepare(`SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${AUDIT_INDEXED_KEY}'`).pluck();
  const setIndexed = db.prepare(`INSERT INTO meta (key, value) VALUES ('${AUDIT_INDEXED_KEY}', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`);
  // OR IGNORE: a catch-up may overlap entries a commit listener already added; both come from the
  // same chain line, so the first copy is the right one.
  const insert = db.prepare(`INSERT OR IGNORE INTO audit (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const apply = db.transaction((entries: AuditEntry[]) => {
    for (const e of entries) insert.run(e.seq, e.ts, e.prev, e.actor, e.role, e.source, e.action, e.target, e.outcome, JSON.stringify(e.details));
    const last = entries.at(-1);
    if (last) setIndexed.run(String(last.seq));
  });
  const statements = new Map<string, Statement>();

  return {
    indexedSeq: () => (indexedSeq.get() as number | undefined) ?? 0,
    apply,
    query(filters) {
      const q = normalizeAuditQuery(filters);
      const used = FILTERS.filter((f) => q[f.key] !== undefined);
      const where = used.length ? `WHERE ${used.map((f) => f.sql).join(' AND ')}` : '';
      const sql = `SELECT ${COLUMNS} FROM audit ${where} ORDER BY seq DESC LIMIT ?`;
      let stmt = statements.get(sql);
      if (!stmt) {
        stmt = db.prepare(sql);
        statements.set(sql, stmt);
      }
      // One row past the page says whether there is a next page.
      const rows = stmt.all(...used.map((f) => q[f.key]), q.limit + 1) as AuditRow[];
      const items = rows.slice(0, q.limit).map(toEntry);
      return { items, next_cursor: rows.length > q.limit ? String(items.at(-1)!.seq) : null };
    },
  };
}

/**
 * Adds every chain entry after the index's position up to `upTo` (committed, so complete lines
 * only), in batches. Used on open and whenever a commit could not be indexed live.
 */
export async function catchUpAuditIndex(index: AuditIndex, dir: string, upTo: number): Promise<number> {
  let batch: AuditEntry[] = [];
  let added = 0;
  for await (const { record } of readLines<AuditEntry>(dir, index.indexedSeq() + 1, upTo)) {
    batch.push(record);
    if (batch.length >= 500) {
      index.apply(batch);
      added += batch.length;
      batch = [];
    }
  }
  index.apply(batch);
  return added + batch.length;
}
