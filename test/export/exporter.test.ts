import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/database.js';
import { IntegrityError } from '../../src/export/blob-reader.js';
import { openFileSink, streamSink } from '../../src/export/byte-sink.js';
import { createExporter, type Exporter } from '../../src/export/exporter.js';
import { createDirSink, createMboxSink, createZipSink } from '../../src/export/sinks.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { tempDir } from '../helpers/tmp.js';
import { seedExportFixture, type FixtureMessage } from './fixture.js';
import { readMboxWithPython, readZipWithPython } from './python.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
let dataDir: string;
let db: Db;
let exporter: Exporter;
let messages: Array<FixtureMessage & { id: number }>;

function open(dir: string): { db: Db; exporter: Exporter } {
  const d = openDatabase({ file: path.join(dir, 'spindle.db'), readonly: true });
  return { db: d, exporter: createExporter({ db: d, store: createFsBlobStore({ dir: path.join(dir, 'blobs'), recentCacheBytes: 0, readOnly: true }) }) };
}

beforeAll(async () => {
  dataDir = tempDir();
  messages = await seedExportFixture(dataDir);
  ({ db, exporter } = open(dataDir));
}, 60_000);
afterAll(() => db?.close());

const header = (count: number) => ({ createdAt: '2024-03-10T00:00:00.000Z', selection: { query: '', after: null, before: null }, count });

describe('mbox export', () => {
  it("Python's mailbox reads exactly the archived messages, byte for byte after un-quoting, in date order", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'all.mbox');
    const selection = exporter.select({ spec: { query: '' } });
    const sink = createMboxSink(await openFileSink(file), { csv: await openFileSink(`${file}.manifest.csv`), json: await openFileSink(`${file}.manifest.json`) }, header(selection.count));
    const progress: number[] = [];
    const result = await exporter.run({ selection, sink, onProgress: (p) => progress.push(p.done) });

    expect(result).toMatchObject({ exported: 6, bytes: messages.reduce((n, m) => n + m.raw.length, 0), digest: sha(fs.readFileSync(file)) });
    expect(progress.at(-1)).toBe(6); // after each batch (the 2 MB message is one of its own)
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    const read = await readMboxWithPython(file);
    expect(read.map((m) => m.sha256)).toEqual(messages.map((m) => m.sha256));
    for (const [i, m] of read.entries()) {
      if (m.b64) expect(Buffer.from(m.b64, 'base64').equals(messages[i]!.raw)).toBe(true);
    }
    expect(read.map((m) => m.from.split(' ')[0])).toEqual(messages.map((m) => m.from));
    // The envelope sender and the arrival time, as asctime.
    expect(read[0]!.from).toMatch(/^alice@example\.com [A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \d{4}$/);

    const json = JSON.parse(fs.readFileSync(`${file}.manifest.json`, 'utf8')) as { format: string; count: number; exported: number; messages: Array<Record<string, unknown>> };
    expect(json).toMatchObject({ format: 'mbox', count: 6, exported: 6 });
    expect(json.messages.map((e) => e.sha256)).toEqual(messages.map((m) => m.sha256));
    expect(json.messages[0]).toEqual({
      id: messages[0]!.id, sha256: messages[0]!.sha256, message_id: 'm1@example.com', date: '2024-03-01T12:04:00.000Z',
      from: 'alice@example.com', to: 'bob@example.com', subject: 'm1 Quarterly plan — Grüße', size: messages[0]!.raw.length,
    });
    const csv = fs.readFileSync(`${file}.manifest.csv`, 'utf8').split('\r\n');
    expect(csv[0]).toBe('id,sha256,message_id,date,from,to,subject,size');
    expect(csv[1]).toBe(`${messages[0]!.id},${messages[0]!.sha256},m1@example.com,2024-03-01T12:04:00.000Z,alice@example.com,bob@example.com,m1 Quarterly plan — Grüße,${messages[0]!.raw.length}`);
    expect(csv.length).toBe(8); // header, 6 rows, and the empty string after the last CRLF
  });
});

describe('zip export', () => {
  it('every entry hashes to its manifest line and to the archived blob; the manifests are inside', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'all.zip');
    const selection = exporter.select({ spec: { mailbox: ['bob@example.com', 'alice@example.com'] } });
    const sink = await createZipSink(await openFileSink(file), dir, header(selection.count));
    const result = await exporter.run({ selection, sink });
    expect(result.exported).toBe(4);
    expect(result.digest).toBe(sha(fs.readFileSync(file)));
    expect(fs.readdirSync(dir)).toEqual(['all.zip']); // no temporary manifest or spool left

    const zip = await readZipWithPython(file);
    expect(zip.bad).toBeNull();
    const expected = messages.filter((m) => !['m2', 'm5'].includes(m.key));
    expect(zip.entries.map((e) => e.name)).toEqual([
      ...expected.map((m) => expect.stringMatching(new RegExp(`^2024-03-0${m.key.slice(1)}_1204_${m.key}-[a-z0-9-]+_${m.id}\\.eml$`))),
      'manifest.csv', 'manifest.json',
    ]);
    expect(zip.entries[0]!.name).toBe(`2024-03-01_1204_m1-quarterly-plan-grusse_${messages[0]!.id}.eml`);
    expect(zip.manifest.map((r) => [r.file, r.sha256, Number(r.size)])).toEqual(zip.entries.slice(0, 4).map((e) => [e.name, e.sha256, e.size]));
    expect(zip.manifest.map((r) => r.sha256)).toEqual(expected.map((m) => m.sha256));
    expect(zip.entries[0]!.date_time).toEqual([2024, 3, 1, 12, 4, 0]);
  });
});

describe('directory export', () => {
  it('one .eml per message and the manifests; the digest is that of manifest.json', async () => {
    const dir = path.join(tempDir(), 'out');
    const selection = exporter.select({ spec: { domain: 'example.com' }, after: '2024-03-02' });
    const result = await exporter.run({ selection, sink: await createDirSink(dir, header(selection.count)) });
    expect(result.exported).toBe(4);
    expect(result.digest).toBe(sha(fs.readFileSync(path.join(dir, 'manifest.json'))));
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort();
    expect(files.map((f) => sha(fs.readFileSync(path.join(dir, f))))).toEqual(['m2', 'm3', 'm4', 'm6'].map((k) => messages.find((m) => m.key === k)!.sha256));
  });
});

describe('backpressure and early ends', () => {
  it('a consumer that goes away stops the export (what a client abort does to the API)', async () => {
    const body = new PassThrough();
    let seen = 0;
    body.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > 300_000) body.destroy();
    });
    const selection = exporter.select({ spec: { query: '' } });
    const err = await exporter.run({ selection, sink: createMboxSink(streamSink(body), null, header(6)) }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/closed before the export finished/);
  });

  it('a consumer that does not read holds the export back instead of filling memory', async () => {
    const body = new PassThrough({ highWaterMark: 1024 });
    const selection = exporter.select({ spec: { query: '' } });
    let done = 0;
    const run = exporter.run({ selection, sink: createMboxSink(streamSink(body), null, header(6)), onProgress: (p) => (done = p.done) });
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBeLessThan(6); // stuck on the 2 MB message until someone reads
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    const result = await run;
    expect(result.exported).toBe(6);
    expect(sha(Buffer.concat(chunks))).toBe(result.digest);
  });
});

describe('integrity', () => {
  it('a blob that no longer matches its sha256 stops the export; nothing is shipped as if it were the message', async () => {
    const copy = tempDir();
    fs.cpSync(dataDir, copy, { recursive: true });
    const m3 = messages.find((m) => m.key === 'm3')!;
    const blob = path.join(copy, 'blobs', m3.sha256.slice(0, 2), m3.sha256.slice(2, 4), `${m3.sha256}.eml.gz`);
    fs.writeFileSync(blob, zlib.gzipSync(Buffer.from(m3.raw.toString().replace('pineapple', 'grapefruit'))));
    const other = open(copy);
    try {
      const file = path.join(copy, 'out.mbox');
      const selection = other.exporter.select({ spec: { query: '' } });
      const err = await other.exporter.run({ selection, sink: createMboxSink(await openFileSink(file), null, header(6)) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toMatch(new RegExp(`message ${m3.id}: blob ${m3.sha256} read back as`));
    } finally {
      other.db.close();
    }
  });

  it('a missing blob stops the export too, after a few retries', async () => {
    const copy = tempDir();
    fs.cpSync(dataDir, copy, { recursive: true });
    const m4 = messages.find((m) => m.key === 'm4')!; // the streamed one
    fs.rmSync(path.join(copy, 'blobs', m4.sha256.slice(0, 2), m4.sha256.slice(2, 4), `${m4.sha256}.eml.gz`));
    const other = open(copy);
    try {
      const selection = other.exporter.select({ spec: { query: '' } });
      const err = await other.exporter.run({ selection, sink: createMboxSink(await openFileSink(path.join(copy, 'o.mbox')), null, header(6)) }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('blob_not_found');
    } finally {
      other.db.close();
    }
  }, 20_000);
});
