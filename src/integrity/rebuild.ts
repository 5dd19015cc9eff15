import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import { openAuditTrail } from '../audit/trail.js';
import { createArchiveWriter } from '../db/archive-writer.js';
import { openDatabase, type Db } from '../db/database.js';
import { createLocalIndexSink } from '../ingest/index-sink.js';
import { createIndexer } from '../ingest/indexer.js';
import { createIndexParsePool } from '../ingest/parse-pool.js';
import { createArchiveAddressMatcher } from '../journal/archive-address.js';
import { openLedger } from '../ledger/ledger.js';
import { acquireLock } from '../runtime/lock.js';
import { dataPaths } from '../runtime/paths.js';
import { createFsBlobStore } from '../store/fs-store.js';

export interface RebuildResult {
  records: number;
  messages: number;
  /** Audit trail entries indexed into the new database. */
  auditEntries: number;
  tokensCarried: number | null;
  /** Accounts kept from the old database. */
  accountsCarried: number;
  seconds: number;
}

/**
 * Recreates spindle.db from the ledger and the blobs, the archive's truth. The new database is
 * built beside the old one and swapped in only when complete; tokens (not derived from mail) are
 * carried over when the old database is still readable.
 */
/** Tables that are not derived from the ledger, blobs and audit chain, parents before children. */
const KEPT_TABLES = ['users', 'user_roles', 'user_addresses', 'tokens', 'sessions'];

/**
 * Copies the kept tables from the attached old database, column by column as far as both schemas
 * have them (the old one may predate a migration). Returns rows copied per table.
 */
function carryOver(db: Db): Record<string, number> {
  const copied: Record<string, number> = {};
  const columns = (schema: 'main' | 'old', table: string): string[] =>
    (db.prepare(`SELECT name FROM pragma_table_info(?, ?)`).pluck().all(table, schema) as string[]);
  for (const table of KEPT_TABLES) {
    const old = new Set(columns('old', table));
    if (old.size === 0) continue;
    const cols = columns('main', table).filter((c) => old.has(c)).map((c) => `"${c}"`).join(', ');
    copied[table] = db.prepare(`INSERT INTO main."${table}" (${cols}) SELECT ${cols} FROM old."${table}"`).run().changes;
  }
  return copied;
}

export async function rebuildDatabase(config: Config, log: Logger, onProgress?: (seq: number, last: number) => void): Promise<RebuildResult> {
  const started = performance.now();
  const paths = dataPaths(config.dataDir);
  const release = acquireLock(paths.lock);
  const tmp = `${paths.db}.rebuild`;
  try {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
    const ledger = await openLedger({ dir: paths.ledger, log });
    const store = createFsBlobStore({ dir: paths.blobs, recentCacheBytes: 0 });
    const db = openDatabase({ file: tmp });
    const pool = createIndexParsePool(config);
    let tokensCarried: number | null = null;
    let accountsCarried = 0;
    let messages = 0;
    let auditEntries = 0;
    try {
      // Deliveries that purge records remove: their blobs are gone by design, which is no loss.
      const purgedSeqs = new Set<number>();
      for await (const r of ledger.read()) {
        if (r.type === 'purge') for (const m of r.messages) for (const d of m.deliveries) purgedSeqs.add(d.seq);
      }
      const indexer = createIndexer({
        ledger, store, log, purgedSeqs,
        sink: createLocalIndexSink({
          writer: createArchiveWriter(db), parser: pool,
          matcher: createArchiveAddressMatcher(config.archiveAddresses), trustedHeader: config.trustedEnvelopeHeader.toLowerCase(),
        }),
        batchSize: 256,
      });
      await indexer.runOnce(onProgress);
      // The audit table is derived from its own chain: opening the trail catches the fresh,
      // empty table up (we hold the lock, so taking the trail's writer role is safe).
      const audit = await openAuditTrail({ dir: paths.audit, db, log });
      auditEntries = audit.lastSeq();
      await audit.close();
      if (fs.existsSync(paths.db)) {
        try {
          db.prepare('ATTACH DATABASE ? AS old').run(paths.db);
          const carried = db.transaction(() => carryOver(db))();
          tokensCarried = carried.tokens ?? 0;
          accountsCarried = carried.users ?? 0;
          db.exec('DETACH DATABASE old');
        } catch (err) {
          log.warn({ event: 'rebuild.tokens_lost', err }, 'old database unreadable: accounts and API tokens must be created again');
        }
      }
      messages = db.prepare('SELECT count(*) FROM messages').pluck().get() as number;
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
      await pool.close();
      await ledger.close();
      await store.close();
    }
    for (const f of [`${paths.db}-wal`, `${paths.db}-shm`]) fs.rmSync(f, { force: true });
    fs.renameSync(tmp, paths.db);
    for (const f of [`${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
    return { records: ledger.lastSeq(), messages, auditEntries, tokensCarried, accountsCarried, seconds: (performance.now() - started) / 1000 };
  } finally {
    release();
  }
}
