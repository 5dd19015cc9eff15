import type { Logger } from 'pino';
import type { AuditTrail } from '../audit/trail.js';
import type { Config } from '../config/settings.js';
import { indexedSeqReader } from '../db/archive-writer.js';
import type { Db } from '../db/database.js';
import type { Indexer } from '../ingest/indexer.js';
import type { Ledger } from '../ledger/ledger.js';
import { createRetentionService, purgeAuditDetails, type RetentionService } from '../retention/service.js';
import { scheduleDaily, type Schedule } from '../retention/schedule.js';
import type { BlobStore } from '../store/blob-store.js';

export interface ServerRetention {
  service: RetentionService;
  /** When the scheduled purge runs next (null: SPINDLE_PURGE_TIME is empty). */
  nextRun(): Date | null;
  /** After the indexer has caught up: finish an interrupted purge's deletions, start the schedule. */
  start(): void;
  close(): Promise<void>;
}

/** Retention inside `spindle serve`: the service for the API, the daily purge, and crash recovery. */
export function startServerRetention(opts: {
  config: Config; db: Db; ledger: Ledger; store: BlobStore; indexer: Indexer; audit: AuditTrail; log: Logger;
}): ServerRetention {
  const { log, audit } = opts;
  const service = createRetentionService({
    db: opts.db, ledger: opts.ledger, store: opts.store, indexed: () => opts.indexer.idle(), indexedSeq: indexedSeqReader(opts.db),
    log, now: () => new Date(),
  });
  let schedule: Schedule | null = null;
  let recovering: Promise<unknown> = Promise.resolve();

  async function scheduled(): Promise<void> {
    if (service.running()) return;
    const actor = 'spindle:schedule';
    try {
      const report = await service.run({ asOf: new Date(), actor });
      await audit.record({ actor, role: null, source: null, action: 'retention.run', target: report.run, outcome: 'ok', details: purgeAuditDetails(report) });
    } catch (err) {
      log.error({ event: 'purge.scheduled_failed', err }, 'scheduled purge failed; it runs again tomorrow, or run it now with POST /api/retention/run');
      await audit.record({ actor, role: null, source: null, action: 'retention.run', target: null, outcome: 'failed', details: { error: (err as Error).message } })
        .catch(() => undefined);
    }
  }

  return {
    service,
    nextRun: () => schedule?.next() ?? null,
    start() {
      recovering = service.finishPending().then(
        (r) => {
          if (r.deleted + r.kept + r.pending > 0) log.info({ event: 'purge.recovered', ...r }, 'finished the blob deletions of an interrupted purge');
        },
        (err: unknown) => log.error({ event: 'purge.recover_failed', err }, 'could not finish an interrupted purge; the next run retries'),
      );
      schedule = scheduleDaily(opts.config.purgeTime, scheduled);
    },
    async close() {
      schedule?.stop();
      await recovering;
      await service.stop();
    },
  };
}
