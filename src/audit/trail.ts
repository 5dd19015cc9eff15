import type { Logger } from 'pino';
import type { Db } from '../db/database.js';
import { openChainedLog } from '../ledger/chained-log.js';
import { toAuditBody, type AuditBody, type AuditEntry, type AuditInput } from './entries.js';
import type { AuditPage, AuditQuery } from './filters.js';
import { catchUpAuditIndex, createAuditIndex } from './index-db.js';
import { verifyAuditChain, type AuditVerifyReport } from './verify.js';

export interface AuditTrail {
  /** Appends an entry; resolves once it is on disk (fsync), group-committed with concurrent ones. */
  record(entry: AuditInput): Promise<AuditEntry>;
  /** Newest first, from the database index (caught up with the chain first). */
  query(filters?: AuditQuery): Promise<AuditPage>;
  verify(): Promise<AuditVerifyReport>;
  lastSeq(): number;
  close(): Promise<void>;
}

export interface AuditTrailOptions {
  /** `<dataDir>/audit`. */
  dir: string;
  db: Db;
  log: Logger;
  now?: () => Date;
  segmentBytes?: number;
}

export class AuditUnavailableError extends Error {
  readonly code = 'audit_unavailable';
}

/** The index claims entries the chain does not have: the trail was cut or replaced. */
export class AuditIndexAheadError extends Error {
  readonly code = 'audit_index_ahead';
}

/**
 * The "who saw what" trail: its own hash-chained log beside the delivery ledger (it grows with
 * every search; the ledger stays a record of deliveries), plus a derived SQLite table to query.
 * One writer per data directory, like the ledger.
 */
export async function openAuditTrail(opts: AuditTrailOptions): Promise<AuditTrail> {
  const { dir, log } = opts;
  const chain = await openChainedLog<AuditBody>({
    dir, log, name: 'audit', onWriteFailure: 'the requests that needed it were refused',
    unavailable: (message) => new AuditUnavailableError(message),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}),
  });
  const index = createAuditIndex(opts.db);
  if (index.indexedSeq() > chain.lastSeq()) {
    await chain.close();
    // New entries would reuse seqs the index already holds; refuse rather than mix two trails.
    throw new AuditIndexAheadError(`the audit index holds entries up to ${index.indexedSeq()} but the trail in ${dir} ends at ${chain.lastSeq()}: ` +
      'it was truncated or replaced. Restore it from a backup, or run `spindle rebuild` to index the trail as it is now');
  }

  let syncing: Promise<void> | null = null;
  const sync = (): Promise<void> => {
    if (index.indexedSeq() >= chain.lastSeq()) return Promise.resolve();
    syncing ??= catchUpAuditIndex(index, dir, chain.lastSeq())
      .then((n) => {
        if (n > 0) log.info({ event: 'audit.index_catch_up', entries: n }, 'audit entries added to the index from the trail');
      })
      .finally(() => {
        syncing = null;
      });
    return syncing;
  };
  await sync();

  chain.onCommit((entries) => {
    // Only extend an unbroken index; after a failed insert the next query catches up from disk.
    if (syncing || entries[0]!.seq !== index.indexedSeq() + 1) return;
    try {
      index.apply(entries);
    } catch (err) {
      log.error({ event: 'audit.index_failed', err, first: entries[0]!.seq }, 'audit entries not indexed yet; the next query catches up');
    }
  });

  return {
    async record(input) {
      const { body, dropped } = toAuditBody(input);
      if (dropped.length) log.warn({ event: 'audit.details_dropped', action: body.action, keys: dropped }, 'audit details dropped (secrets and content never go on record)');
      return chain.append(body);
    },
    async query(filters = {}) {
      await sync();
      return index.query(filters);
    },
    verify: () => verifyAuditChain(dir, { indexedSeq: index.indexedSeq() }),
    lastSeq: () => chain.lastSeq(),
    async close() {
      await chain.close();
      await syncing;
    },
  };
}
