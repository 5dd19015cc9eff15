import fs from 'node:fs';
import { openDatabase } from '../db/database.js';

/** Which entries of the ledger's purge records the database applied (its tombstones). */
export interface PurgeState {
  applied(purgeSeq: number, messageId: number): boolean;
}

/**
 * A purge record lists what it means to remove; the database applies an entry unless a duplicate
 * delivery joined that message in the meantime (then the message stays, and so do its blobs).
 * The tombstones say which entries were applied. Without a readable database, or for records it
 * has not applied yet, every entry counts as applied (the purge is decided once it is ledgered;
 * only the rare entry the database then skips would read as purged instead of present).
 */
export function readPurgeState(dbFile: string): PurgeState {
  const assumeAll: PurgeState = { applied: () => true };
  if (!fs.existsSync(dbFile)) return assumeAll;
  let db;
  try {
    db = openDatabase({ file: dbFile, readonly: true });
  } catch {
    return assumeAll;
  }
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tombstones'").get();
    if (!hasTable) return assumeAll;
    const indexed = Number(db.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_seq'").pluck().get() ?? 0);
    const done = new Set<string>();
    for (const row of db.prepare('SELECT seq, id FROM tombstones').iterate() as Iterable<{ seq: number; id: number }>) done.add(`${row.seq}:${row.id}`);
    return { applied: (seq, id) => seq > indexed || done.has(`${seq}:${id}`) };
  } catch {
    return assumeAll;
  } finally {
    db.close();
  }
}
