import type { Logger } from 'pino';
import { openChainedLog, type ChainedLog } from './chained-log.js';
import type { LedgerBody } from './records.js';

/** The delivery ledger: a chained log of LedgerBody records (see chained-log.ts). */
export type Ledger = ChainedLog<LedgerBody>;

export class LedgerUnavailableError extends Error {
  readonly code = 'ledger_unavailable';
}

export interface LedgerOptions {
  dir: string;
  log: Logger;
  /** Start a new segment past this size. */
  segmentBytes?: number;
  now?: () => Date;
}

/**
 * The append-only, hash-chained ledger. One writer; appends from concurrent SMTP sessions are
 * group-committed: while one write+fsync is in flight the next batch gathers, so the number of
 * fsyncs per second stays bounded however many messages arrive.
 */
export function openLedger(opts: LedgerOptions): Promise<Ledger> {
  return openChainedLog<LedgerBody>({
    ...opts,
    name: 'ledger',
    onWriteFailure: 'deliveries answered 4xx',
    unavailable: (message) => new LedgerUnavailableError(message),
  });
}
