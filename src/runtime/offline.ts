import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import { createArchiveWriter, indexedSeqReader } from '../db/archive-writer.js';
import { openDatabase } from '../db/database.js';
import { createLocalIndexSink } from '../ingest/index-sink.js';
import { createIndexer } from '../ingest/indexer.js';
import { createIndexParsePool } from '../ingest/parse-pool.js';
import { createArchiveAddressMatcher } from '../journal/archive-address.js';
import { openLedger } from '../ledger/ledger.js';
import type { PurgeStep } from '../retention/purge.js';
import { createRetentionService, type RetentionService } from '../retention/service.js';
import { createFsBlobStore } from '../store/fs-store.js';
import { acquireLock } from './lock.js';
import { dataPaths } from './paths.js';

/**
 * For commands that change what the archive holds while no server runs: takes the data-directory
 * lock (a LockedError when a server holds it: it owns the ledger), opens the ledger, the blob
 * store and the database, catches the index up, and gives `fn` the retention service, exactly as
 * the server wires it. Everything is closed again afterwards, whatever happens.
 */
export async function withOfflineRetention<T>(
  config: Config, log: Logger, fn: (service: RetentionService) => Promise<T>, opts: { onStep?: (step: PurgeStep) => void | Promise<void>; now?: () => Date } = {},
): Promise<T> {
  const paths = dataPaths(config.dataDir);
  const release = acquireLock(paths.lock);
  const closers: Array<() => Promise<void> | void> = [release];
  try {
    const store = createFsBlobStore({ dir: paths.blobs, recentCacheBytes: 0 });
    closers.push(() => store.close());
    const ledger = await openLedger({ dir: paths.ledger, log });
    closers.push(() => ledger.close());
    const db = openDatabase({ file: paths.db });
    closers.push(() => {
      db.close();
    });
    const indexer = createIndexer({
      ledger, store, log,
      sink: createLocalIndexSink({
        writer: createArchiveWriter(db), parser: createIndexParsePool(config),
        matcher: createArchiveAddressMatcher(config.archiveAddresses), trustedHeader: config.trustedEnvelopeHeader.toLowerCase(),
      }),
    });
    closers.push(() => indexer.close());
    await indexer.start();
    const service = createRetentionService({
      db, ledger, store, indexed: () => indexer.idle(), indexedSeq: indexedSeqReader(db), log, now: opts.now ?? (() => new Date()),
      ...(opts.onStep ? { onStep: opts.onStep } : {}),
    });
    return await fn(service);
  } finally {
    for (const close of closers.reverse()) await close();
  }
}
