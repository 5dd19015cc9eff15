import fs from 'node:fs';
import { openDatabase } from '../db/database.js';
import { checkChain } from '../ledger/segments.js';
import type { AuditEntry } from './entries.js';
import { AUDIT_INDEXED_KEY } from './index-db.js';

export interface AuditChainBreak {
  /** The entry that was changed, is out of place, or the one found where a missing one belongs; null for a line that is not JSON. */
  seq: number | null;
  file: string;
  line: number;
  reason: string;
}

export interface AuditVerifyReport {
  entries: number;
  ok: boolean;
  firstBroken?: AuditChainBreak;
}

export interface AuditVerifyOptions {
  /**
   * The last seq the database index recorded. A hash chain cannot show entries cut from its end;
   * the index, written after every commit, can: it must never be ahead of the chain.
   */
  indexedSeq?: number;
}

/**
 * Walks the audit chain. A changed entry is detected by its successor, whose prev no longer
 * matches; the report names the changed entry itself, which is what an auditor asks about.
 * A missing directory is an empty trail.
 */
export async function verifyAuditChain(dir: string, opts: AuditVerifyOptions = {}): Promise<AuditVerifyReport> {
  // The last entry still linked into the chain (a holder object: TypeScript does not follow
  // assignments made inside the callback).
  const linked: { last: { seq: number; file: string; lineNo: number } | null } = { last: null };
  const chain = await checkChain<AuditEntry>(dir, (entry, at) => {
    linked.last = { seq: entry.seq, file: at.file, lineNo: at.lineNo };
  });
  const brk = chain.firstBreak;
  if (brk) {
    const before = linked.last;
    // checkChain tests seq before prev, so a break on the expected seq is a prev mismatch.
    if (brk.seq !== null && brk.seq === chain.lastSeq + 1) {
      if (before === null) {
        return { entries: chain.records, ok: false, firstBroken: { seq: brk.seq, file: brk.file, line: brk.lineNo, reason: `entry ${brk.seq} does not start the chain: its prev is not the genesis hash (it was changed)` } };
      }
      return {
        entries: chain.records,
        ok: false,
        firstBroken: {
          seq: before.seq, file: before.file, line: before.lineNo,
          reason: `entry ${before.seq} was changed after it was written: it no longer hashes to the prev that entry ${brk.seq} recorded (or entry ${brk.seq}'s prev was changed)`,
        },
      };
    }
    const reason = brk.seq === null ? brk.reason : `expected entry ${chain.lastSeq + 1}, found ${brk.seq}: an entry was removed, inserted or moved`;
    return { entries: chain.records, ok: false, firstBroken: { seq: brk.seq, file: brk.file, line: brk.lineNo, reason } };
  }
  if (opts.indexedSeq !== undefined && opts.indexedSeq > chain.lastSeq) {
    const end = linked.last;
    return {
      entries: chain.records,
      ok: false,
      firstBroken: {
        seq: chain.lastSeq + 1, file: end?.file ?? dir, line: (end?.lineNo ?? 0) + 1,
        reason: `entries ${chain.lastSeq + 1}-${opts.indexedSeq} are missing from the end of the trail (the database index recorded them)`,
      },
    };
  }
  return { entries: chain.records, ok: true };
}

/**
 * The index position in an archive's database, read-only; undefined when there is no database,
 * it predates the audit trail, or it cannot be read (the database is a cache: a damaged one must
 * not stop verify of the ledger, the blobs and the chain itself). Read it before walking the
 * chain: a live server only moves it forward after a commit, so it can never appear ahead of a
 * chain read later.
 */
export function readAuditIndexedSeq(dbFile: string): number | undefined {
  if (!fs.existsSync(dbFile)) return undefined;
  let db;
  try {
    db = openDatabase({ file: dbFile, readonly: true });
  } catch {
    return undefined;
  }
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    if (!hasMeta) return undefined;
    const value = db.prepare('SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?').pluck().get(AUDIT_INDEXED_KEY) as number | undefined;
    return value ?? undefined;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}
