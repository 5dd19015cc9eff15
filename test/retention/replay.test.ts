/**
 * How the archive writer applies purge records, fed ledger records by hand as the indexer would:
 * live (the message is there) and in a rebuild (its blobs are gone, so its deliveries were never
 * indexed). Both must end in the same state, and a purge must never take a delivery it did not list.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArchiveWriter } from '../../src/db/archive-writer.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createLocalIndexSink, type IndexInput } from '../../src/ingest/index-sink.js';
import { parseMail } from '../../src/ingest/parse.js';
import { indexParseOptions } from '../../src/ingest/parse-pool.js';
import { createArchiveAddressMatcher } from '../../src/journal/archive-address.js';
import { GENESIS, type LedgerBody, type LedgerRecord, type PurgedMessage } from '../../src/ledger/records.js';
import { buildMessage, tempDir } from '../helpers/archive.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const RAW = buildMessage({ subject: 'to purge', messageId: 'p@x', body: 'same body' });
const REINJECTED = `Received: from relay by mx; Tue, 5 Mar 2024 10:00:01 +0000\r\n${RAW}`;

function harness() {
  const db: Db = openDatabase({ file: path.join(tempDir(), 'spindle.db') });
  const sink = createLocalIndexSink({
    writer: createArchiveWriter(db), parser: { parse: (raw) => parseMail(raw, indexParseOptions({ trustedEnvelopeHeader: '' })) },
    matcher: createArchiveAddressMatcher(['archive@localhost']), trustedHeader: '',
  });
  let seq = 0;
  const record = (body: LedgerBody): LedgerRecord => ({ seq: ++seq, ts: '2024-03-05T10:00:00.000Z', prev: GENESIS, ...body }) as LedgerRecord;
  const delivery = (raw: string): IndexInput => ({
    record: record({ type: 'delivery', blob: sha(raw), size: raw.length, stored: raw.length, env: { mailFrom: 'a@x', rcpts: [{ address: 'archive@localhost' }], client: '127.0.0.1', helo: 'h', session: 's', tls: false } }),
    raw: Buffer.from(raw),
  });
  const purge = (messages: PurgedMessage[]): IndexInput => ({
    record: record({ type: 'purge', run: 'p-test', asOf: '2030-01-01T00:00:00.000Z', basis: seq, actor: 't', held: 0, final: true, messages }),
    raw: null,
  });
  const entry = (id: number, deliveries: IndexInput[]): PurgedMessage => ({
    id, deliveries: deliveries.map((d) => ({ seq: d.record.seq, blob: (d.record as { blob: string }).blob })),
    blobs: [...new Set(deliveries.map((d) => (d.record as { blob: string }).blob))], sha256: (deliveries[0]!.record as { blob: string }).blob,
    messageId: 'p@x', date: null, arrived: '2024-03-05T10:00:00.000Z', expired: '2025-03-05T10:00:00.000Z', rule: 'r-1', bytes: 10, storedBytes: 5,
  });
  const n = (sql: string) => db.prepare(sql).pluck().get() as number;
  return { db, sink, delivery, purge, entry, n };
}

describe('purge records in the archive writer', () => {
  it('live: removes the message and every row of it, leaves a tombstone, marks its blobs for deletion', async () => {
    const h = harness();
    const d1 = h.delivery(RAW);
    const d2 = h.delivery(REINJECTED);
    await h.sink.apply([d1, d2]);
    const id = h.db.prepare('SELECT id FROM messages').pluck().get() as number;
    expect(h.n('SELECT count(*) FROM deliveries')).toBe(2);
    await h.sink.apply([h.purge([h.entry(id, [d1, d2])])]);
    for (const table of ['messages', 'deliveries', 'recipients', 'participants', 'attachments', 'message_fts', 'blobs']) {
      expect(h.n(`SELECT count(*) FROM ${table}`), table).toBe(0);
    }
    expect(h.n('SELECT count(*) FROM tombstones WHERE id = ' + id)).toBe(1);
    expect(h.n("SELECT count(*) FROM purge_blobs WHERE state = 'pending'")).toBe(2);
    expect(h.db.prepare('SELECT messages, skipped, finished_at FROM purge_runs').get()).toEqual({ messages: 1, skipped: 0, finished_at: '2024-03-05T10:00:00.000Z' });
  });

  it('keeps a message that a delivery the record does not list joined meanwhile', async () => {
    const h = harness();
    const d1 = h.delivery(RAW);
    await h.sink.apply([d1]);
    const id = h.db.prepare('SELECT id FROM messages').pluck().get() as number;
    const decided = h.entry(id, [d1]);
    // The same bytes arrive again between the decision and the record.
    await h.sink.apply([h.delivery(RAW), h.purge([decided])]);
    expect(h.n('SELECT count(*) FROM messages')).toBe(1);
    expect(h.n('SELECT count(*) FROM deliveries')).toBe(2);
    expect(h.n('SELECT count(*) FROM tombstones')).toBe(0);
    expect(h.n('SELECT count(*) FROM purge_blobs')).toBe(0);
    expect(h.n('SELECT skipped FROM purge_runs')).toBe(1);
  });

  it('rebuild: a purged message whose blobs are gone still gets its tombstone; a listed delivery indexed on its own goes too', async () => {
    const live = harness();
    const d1 = live.delivery(RAW);
    const d2 = live.delivery(REINJECTED);
    await live.sink.apply([d1, d2]);
    const id = live.db.prepare('SELECT id FROM messages').pluck().get() as number;
    const p = live.purge([live.entry(id, [d1, d2])]);
    await live.sink.apply([p]);
    const tombstone = live.db.prepare('SELECT * FROM tombstones').get();

    // Replay, first blob gone (the indexer drops its delivery), the second still there.
    const replay = harness();
    replay.delivery(RAW);
    const r2 = replay.delivery(REINJECTED);
    await replay.sink.apply([r2]);
    expect(replay.n('SELECT count(*) FROM messages')).toBe(1); // d2 alone became a message
    await replay.sink.apply([replay.purge([replay.entry(id, [d1, d2])])]);
    expect(replay.n('SELECT count(*) FROM messages')).toBe(0);
    expect(replay.db.prepare('SELECT * FROM tombstones').get()).toEqual(tombstone);

    // Both blobs gone: nothing was indexed; the tombstone is made from the record alone.
    const bare = harness();
    bare.delivery(RAW);
    bare.delivery(REINJECTED);
    await bare.sink.apply([bare.purge([bare.entry(id, [d1, d2])])]);
    expect(bare.db.prepare('SELECT * FROM tombstones').get()).toEqual(tombstone);
  });

  it('applies a rule, hold or purge once, even when a batch is replayed; never reuses a purged id', async () => {
    const h = harness();
    const d1 = h.delivery(RAW);
    await h.sink.apply([d1]);
    const id = h.db.prepare('SELECT id FROM messages').pluck().get() as number;
    const p = h.purge([h.entry(id, [d1])]);
    await h.sink.apply([p]);
    await h.sink.apply([p]);
    expect(h.n('SELECT batches FROM purge_runs')).toBe(1);
    // The same Date and the same tiebreak would give the same id: it goes to the next one.
    const d3 = h.delivery(buildMessage({ subject: 'other', messageId: 'o@x' }));
    const clash = { ...d3, record: { ...d3.record, seq: (d1.record.seq + 2 ** 20) } } as IndexInput;
    await h.sink.apply([clash]);
    expect(h.db.prepare('SELECT id FROM messages').pluck().get()).toBe(id + 1);
  });
});
