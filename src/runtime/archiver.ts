import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from '../config/settings.js';
import { createArchiveReader } from '../db/archive-reader.js';
import { createArchiveWriter, indexedSeqReader } from '../db/archive-writer.js';
import { openDatabase, type Db } from '../db/database.js';
import { createTokenStore } from '../db/tokens.js';
import { buildApp } from '../http/app.js';
import type { RouteAccess } from '../http/auth.js';
import { ingestSpool } from '../audit/spool.js';
import { openAuditTrail, type AuditTrail } from '../audit/trail.js';
import { createIndexer, type Indexer } from '../ingest/indexer.js';
import { createLocalIndexSink, type IndexSink } from '../ingest/index-sink.js';
import { createIndexThread } from '../ingest/index-thread.js';
import { createIndexParsePool } from '../ingest/parse-pool.js';
import { createArchiveAddressMatcher, type ArchiveAddressMatcher } from '../journal/archive-address.js';
import { openLedger } from '../ledger/ledger.js';
import { createMetrics } from '../metrics/metrics.js';
import { createSearcher } from '../search/search.js';
import { createExporter } from '../export/exporter.js';
import { createSmtpReceiver } from '../smtp/server.js';
import { createFsBlobStore } from '../store/fs-store.js';
import { openAccounts, type Accounts } from './accounts.js';
import { acquireLock } from './lock.js';
import { restoreSetupFromConfig } from './restore.js';
import { startServerRetention } from './retention.js';
import type { RetentionService } from '../retention/service.js';
import { createIntegrityCheck } from '../integrity/verify-thread.js';
import { dataPaths } from './paths.js';
import { VERSION } from './version.js';

export interface RunningArchiver {
  smtp: { host: string; port: number };
  http: { host: string; port: number };
  indexer: Indexer;
  /** Retention rules, holds and purges of this server (the API uses the same service). */
  retention: RetentionService;
  /** Every HTTP route with its access rule. */
  routes: RouteAccess[];
  /** The admin account this start created, if any (see runtime/accounts.ts). */
  firstAdmin: Accounts['firstAdmin'];
  /** Graceful stop: refuse new SMTP sessions, finish those in DATA, flush, close. */
  close(): Promise<void>;
}

/**
 * Parsing and index writes: on an index thread with its own database connection (the default), or
 * with SPINDLE_PARSE_WORKERS=0 on the main thread.
 */
function createIndexSink(config: Config, db: Db, dbFile: string, matcher: ArchiveAddressMatcher, log: Logger): IndexSink {
  if (config.parseWorkers === 0) {
    return createLocalIndexSink({
      writer: createArchiveWriter(db), parser: createIndexParsePool(config), matcher, trustedHeader: config.trustedEnvelopeHeader.toLowerCase(),
    });
  }
  return createIndexThread({
    dbFile, archiveAddresses: config.archiveAddresses, trustedEnvelopeHeader: config.trustedEnvelopeHeader,
    parseWorkers: config.parseWorkers, readIndexedSeq: indexedSeqReader(db), log: log.child({ component: 'index-thread' }),
  });
}

/** Takes in audit entries that commands run beside this server spooled (see audit/spool.ts); returns the stop function. */
function followAuditSpool(audit: AuditTrail, dir: string, log: Logger): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const take = () => {
    running = ingestSpool(audit, dir, (file, err) => log.error({ event: 'audit.spool_bad', file, err }, 'unreadable spooled audit entry kept aside as .bad'))
      .catch((err: unknown) => log.error({ event: 'audit.spool_failed', err }, 'could not take in spooled audit entries; retrying'));
  };
  take();
  const timer = setInterval(() => {
    void running.then(take);
  }, 2000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** Opens every stage of the data flow in order and starts listening. Only the entry point calls this. */
export async function startArchiver(config: Config, log: Logger): Promise<RunningArchiver> {
  const paths = dataPaths(config.dataDir);
  fs.mkdirSync(paths.root, { recursive: true });
  const releaseLock = acquireLock(paths.lock);
  const cleanups: Array<() => Promise<void> | void> = [releaseLock];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ event: 'shutdown.error', err }, 'error while shutting down');
      }
    }
  };
  try {
    const metrics = createMetrics();
    const store = createFsBlobStore({ dir: paths.blobs });
    cleanups.push(() => store.close());
    const ledger = await openLedger({ dir: paths.ledger, log: log.child({ component: 'ledger' }) });
    cleanups.push(() => ledger.close());
    const db = openDatabase({ file: paths.db });
    cleanups.push(() => {
      db.close();
    });
    const matcher = createArchiveAddressMatcher(config.archiveAddresses);
    const indexer = createIndexer({
      ledger, store, sink: createIndexSink(config, db, paths.db, matcher, log), log: log.child({ component: 'indexer' }),
      onIndexed: (_n, waits) => waits.forEach((w) => metrics.indexSeconds.observe(w)),
    });
    cleanups.push(() => indexer.close());
    const reader = createArchiveReader(db);
    metrics.onScrape(() => {
      const s = reader.stats();
      const lag = indexer.lag();
      return {
        messages: s.messages, deliveries: s.deliveries, duplicates: s.duplicates, rawBytes: s.raw_bytes,
        storedBytes: s.stored_bytes, indexLagRecords: lag.records, indexLagSeconds: lag.seconds,
      };
    });

    // Accept mail first: indexing catches up behind the 250 and must never delay it.
    const smtp = createSmtpReceiver({
      host: config.smtpHost, port: config.smtpPort, hostname: config.smtpHostname, allow: config.smtpAllow,
      maxMessageBytes: config.maxMessageBytes, maxClients: config.smtpMaxClients,
      tls: config.smtpTlsCert ? { cert: config.smtpTlsCert, key: config.smtpTlsKey } : null,
      matcher, store, ledger, log: log.child({ component: 'smtp' }), metrics,
    });
    const indexing = indexer.start();
    const smtpAddress = await smtp.listen();
    cleanups.push(() => smtp.close());

    const audit = await openAuditTrail({ dir: paths.audit, db, log: log.child({ component: 'audit' }) });
    cleanups.push(() => audit.close());
    cleanups.push(followAuditSpool(audit, paths.audit, log.child({ component: 'audit' })));
    const accounts = await openAccounts(config, db, log.child({ component: 'accounts' }));
    cleanups.push(() => accounts.close());
    const retention = startServerRetention({ config, db, ledger, store, indexer, audit, log: log.child({ component: 'retention' }) });
    cleanups.push(() => retention.close());
    const app = await buildApp({
      retention: { service: retention.service, nextRun: retention.nextRun, verify: createIntegrityCheck(paths.root) },
      reader, searcher: createSearcher(db), store, tokens: createTokenStore(db), audit, metrics,
      users: accounts.users, sessions: accounts.sessions, signIn: accounts.signIn,
      exporter: createExporter({ db, store, blobsDir: paths.blobs }),
      indexLag: () => indexer.lag(), version: VERSION, restore: restoreSetupFromConfig(config),
    }, { log, trustProxy: config.httpTrustProxy });
    await app.listen({ host: config.httpHost, port: config.httpPort });
    cleanups.push(() => app.close());
    const httpAddr = app.server.address();
    const httpAddress = typeof httpAddr === 'object' && httpAddr ? { host: httpAddr.address, port: httpAddr.port } : { host: config.httpHost, port: config.httpPort };
    log.info({ event: 'listening', smtp: smtpAddress, http: httpAddress, dataDir: paths.root }, 'Spindle is running');
    await indexing;
    retention.start();

    let closing: Promise<void> | null = null;
    return {
      smtp: smtpAddress,
      http: httpAddress,
      indexer,
      retention: retention.service,
      firstAdmin: accounts.firstAdmin,
      routes: app.routeTable,
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
