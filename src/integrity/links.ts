import fs from 'node:fs';
import { openDatabase } from '../db/database.js';
import type { DeliveryRecord } from '../ledger/records.js';
import { readLines } from '../ledger/segments.js';

/** Where the database and the ledger disagree: the database needs `spindle rebuild`. */
export interface BrokenLink {
  kind: 'delivery-not-indexed' | 'delivery-not-in-ledger' | 'delivery-blob-differs' | 'delivery-without-message' | 'message-without-delivery' | 'purged-message-present';
  /** A ledger seq (deliveries) or a message id (messages). */
  ref: number;
}

export interface LinksReport {
  /** Deliveries compared (ledger against database), up to the seq the database has applied. */
  checked: number;
  broken: BrokenLink[];
  /** Broken links beyond the ones listed. */
  more: number;
}

const LIST_LIMIT = 100;

/**
 * Checks the links between the ledger and the database: every delivery the database has applied
 * is in it (or was purged), with the same blob, and nothing else is; every message has a delivery;
 * no purged message is still there. One read transaction, so a live server's writes do not show as
 * breaks. Null when there is no readable database (nothing to compare).
 */
export async function checkLinks(dbFile: string, ledgerDir: string): Promise<LinksReport | null> {
  if (!fs.existsSync(dbFile)) return null;
  let db;
  try {
    db = openDatabase({ file: dbFile, readonly: true });
  } catch {
    return null;
  }
  const report: LinksReport = { checked: 0, broken: [], more: 0 };
  let rows: IterableIterator<{ seq: number; blob_sha256: string }> | null = null;
  const add = (kind: BrokenLink['kind'], ref: number): void => {
    if (report.broken.length < LIST_LIMIT) report.broken.push({ kind, ref });
    else report.more++;
  };
  try {
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tombstones'").get()) return null;
    db.exec('BEGIN');
    const indexed = Number(db.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_seq'").pluck().get() ?? 0);
    const purged = new Set<number>();
    for (const row of db.prepare('SELECT deliveries FROM tombstones').pluck().iterate() as Iterable<string>) {
      for (const d of JSON.parse(row) as Array<{ seq: number }>) purged.add(d.seq);
    }
    for (const [kind, sql] of [
      ['delivery-without-message', 'SELECT d.seq FROM deliveries d LEFT JOIN messages m ON m.id = d.message WHERE m.id IS NULL'],
      ['message-without-delivery', 'SELECT m.id FROM messages m WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message = m.id)'],
      ['purged-message-present', 'SELECT t.id FROM tombstones t JOIN messages m ON m.id = t.id'],
    ] as const) {
      for (const ref of db.prepare(sql).pluck().iterate() as Iterable<number>) add(kind, ref);
    }
    // Merge the ledger's deliveries with the database's, both in seq order.
    rows = db.prepare('SELECT seq, blob_sha256 FROM deliveries WHERE seq <= ? ORDER BY seq').iterate(indexed) as IterableIterator<{ seq: number; blob_sha256: string }>;
    let row = rows.next();
    for await (const { record } of readLines(ledgerDir, 1, indexed)) {
      if (record.type !== 'delivery') continue;
      const d = record as DeliveryRecord;
      report.checked++;
      while (!row.done && row.value.seq < d.seq) {
        add('delivery-not-in-ledger', row.value.seq);
        row = rows.next();
      }
      if (!row.done && row.value.seq === d.seq) {
        if (row.value.blob_sha256 !== d.blob) add('delivery-blob-differs', d.seq);
        row = rows.next();
      } else if (!purged.has(d.seq)) {
        add('delivery-not-indexed', d.seq);
      }
    }
    for (; !row.done; row = rows.next()) add('delivery-not-in-ledger', row.value.seq);
    return report;
  } finally {
    rows?.return?.();
    if (db.inTransaction) db.exec('COMMIT');
    db.close();
  }
}
