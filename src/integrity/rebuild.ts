import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import { openAuditTrail } from '../audit/trail.js';
import { createArchiveWriter } from '../db/archive-writer.js';
import { openDatabase } from '../db/database.js';
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
  seconds: number;
}

/**
 * Recreates spindle.db from the ledger and the blobs, the archive's truth. The new database is
 * built beside the old one and swapped in only when complete; tokens (not derived from mail) are
 * carried over when the old database is still readable.
 */
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
    let messages = 0;
    let auditEntries = 0;
    try {
      const indexer = createIndexer({
        ledger, store, log,
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
          tokensCarried = db.prepare('INSERT INTO tokens SELECT id, name, role, hash, created_at, last_used_at, revoked_at FROM old.tokens').run().changes;
          db.exec('DETACH DATABASE old');
        } catch (err) {
          log.warn({ event: 'rebuild.tokens_lost', err }, 'old database unreadable: API tokens must be created again');
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
    return { records: ledger.lastSeq(), messages, auditEntries, tokensCarried, seconds: (performance.now() - started) / 1000 };
  } finally {
    release();
  }
}
