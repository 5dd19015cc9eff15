import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { indexedSeqReader } from '../../src/db/archive-writer.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import type { IndexInput, IndexSink } from '../../src/ingest/index-sink.js';
import { createIndexThread } from '../../src/ingest/index-thread.js';
import { GENESIS, type LedgerRecord } from '../../src/ledger/records.js';
import { buildMessage } from '../helpers/archive.js';
import { silentLog, tempDir } from '../helpers/tmp.js';

let seq = 0;
function input(subject: string, body = 'hello there'): IndexInput {
  const raw = Buffer.from(buildMessage({ subject, body }));
  const record: LedgerRecord = {
    type: 'delivery', blob: createHash('sha256').update(raw).digest('hex'), size: raw.length, stored: raw.length,
    env: { mailFrom: 'alice@example.com', rcpts: [{ address: 'archive@localhost' }], client: '127.0.0.1', helo: 'test', session: 's1', tls: false },
    seq: ++seq, ts: new Date().toISOString(), prev: GENESIS,
  };
  return { record, raw };
}

const open: Array<{ sink: IndexSink; db: Db }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.sink.close();
    o.db.close();
  }
});

function setup(watchdogMs = 60_000): { sink: IndexSink; db: Db } {
  seq = 0;
  const file = path.join(tempDir(), 'spindle.db');
  const db = openDatabase({ file });
  const sink = createIndexThread({
    dbFile: file, archiveAddresses: ['archive@localhost'], trustedEnvelopeHeader: '', parseWorkers: 1,
    readIndexedSeq: indexedSeqReader(db), log: silentLog(), watchdogMs,
    faults: { crashOn: 'BOOM-CRASH', hangOn: 'BOOM-HANG' },
  });
  const o = { sink, db };
  open.push(o);
  return o;
}

const statusOf = (db: Db) =>
  db.prepare('SELECT subject, parse_status AS status, defects FROM messages ORDER BY first_seq').all() as Array<{ subject: string; status: string; defects: string }>;

describe('index thread', () => {
  it('parses and writes on its own connection; the caller sees the rows and the indexed seq', async () => {
    const { sink, db } = setup();
    expect(await sink.apply([input('one'), input('two'), input('three')])).toBe(3);
    expect(sink.indexedSeq()).toBe(3);
    expect(statusOf(db).map((r) => [r.subject, r.status])).toEqual([['one', 'ok'], ['two', 'ok'], ['three', 'ok']]);
    const hits = db.prepare("SELECT rowid FROM message_fts WHERE message_fts MATCH 'two'").all();
    expect(hits).toHaveLength(1);
  });

  it('a message that crashes the thread is isolated and indexed from the fallback scan; the rest of its batch normally', async () => {
    const { sink, db } = setup();
    const batch = [input('before'), input('poison', 'BOOM-CRASH here'), input('after')];
    expect(await sink.apply(batch)).toBe(3);
    const rows = statusOf(db);
    expect(rows.map((r) => [r.subject, r.status])).toEqual([['before', 'ok'], ['poison', 'partial'], ['after', 'ok']]);
    expect(JSON.parse(rows[1]!.defects)).toContain('parse-crash');
    // The replacement thread keeps working.
    expect(await sink.apply([input('later')])).toBe(1);
    expect(sink.indexedSeq()).toBe(4);
  });

  it('a message that never finishes parsing is stopped by the watchdog and indexed from the fallback scan', async () => {
    const { sink, db } = setup(1500);
    expect(await sink.apply([input('stuck', 'BOOM-HANG'), input('fine')])).toBe(2);
    const rows = statusOf(db);
    expect(rows.map((r) => [r.subject, r.status])).toEqual([['stuck', 'partial'], ['fine', 'ok']]);
    expect(JSON.parse(rows[0]!.defects)).toContain('parse-timeout');
  }, 30_000);

  it('applying the same records twice changes nothing (a batch can be resent after a crash)', async () => {
    const { sink, db } = setup();
    const batch = [input('a'), input('b')];
    await sink.apply(batch);
    expect(await sink.apply(batch)).toBe(0);
    expect(statusOf(db)).toHaveLength(2);
  });
});
