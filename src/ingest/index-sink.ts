import type { ArchiveWriter, IndexItem } from '../db/archive-writer.js';
import type { ArchiveAddressMatcher } from '../journal/archive-address.js';
import { recoverEnvelope } from '../journal/envelope.js';
import type { DeliveryRecord, LedgerRecord } from '../ledger/records.js';
import type { ParsedMail } from './types.js';

/** One ledger record with the bytes of its blob, on its way into the index. */
export interface IndexInput {
  record: LedgerRecord;
  /** The delivery's original bytes; null for records that carry no mail (rules, holds, purges). */
  raw: Buffer | null;
}

/**
 * Where the indexer sends what the ledger committed: parse, recover the envelope, write one
 * transaction. Two implementations: on the calling thread (rebuild, SPINDLE_PARSE_WORKERS=0) and on
 * an index thread with its own database connection (serve; see index-thread.ts).
 */
export interface IndexSink {
  /** Highest ledger seq the database has applied. */
  indexedSeq(): number;
  /** Indexes the batch in one transaction (records already applied are skipped); resolves with how many were new. */
  apply(batch: IndexInput[]): Promise<number>;
  close(): Promise<void>;
}

export interface Parser {
  parse(raw: Buffer): Promise<ParsedMail>;
}

/** Envelope recovery for one parsed delivery: the step between the parser and the archive writer. */
export function toIndexItem(record: DeliveryRecord, parsed: ParsedMail, matcher: ArchiveAddressMatcher, trustedHeader: string): IndexItem {
  const envelope = recoverEnvelope(
    {
      mailFrom: record.env.mailFrom,
      rcpts: record.env.rcpts.map((r) => ({ address: r.address, orcpt: r.orcpt ?? null })),
      headers: { from: parsed.from, sender: parsed.sender, to: parsed.to, cc: parsed.cc, bcc: parsed.bcc },
      ...(trustedHeader ? { trustedHeaderValues: parsed.headers[trustedHeader] ?? [] } : {}),
    },
    matcher,
  );
  return { record, parsed, envelope };
}

export function createLocalIndexSink(opts: {
  writer: ArchiveWriter;
  parser: Parser & { close?: () => Promise<void> };
  matcher: ArchiveAddressMatcher;
  /** Lower-case header name whose values count as envelope recipients, or '' (trust none). */
  trustedHeader: string;
}): IndexSink {
  return {
    indexedSeq: () => opts.writer.indexedSeq(),
    async apply(batch) {
      const items = await Promise.all(batch.map(async ({ record, raw }): Promise<IndexItem> => {
        if (record.type !== 'delivery') return { record };
        return toIndexItem(record, await opts.parser.parse(raw ?? Buffer.alloc(0)), opts.matcher, opts.trustedHeader);
      }));
      return opts.writer.applyBatch(items).length;
    },
    async close() {
      await opts.parser.close?.();
    },
  };
}
