import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BlobNotFoundError, MessageTooLargeError, type BlobStore } from '../../src/store/blob-store.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { tempDir } from '../helpers/tmp.js';

async function* chunks(buf: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const read = async (s: NodeJS.ReadableStream) => {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

/** The contract every BlobStore backend must honour. */
function blobStoreContract(name: string, make: () => BlobStore) {
  describe(`BlobStore contract: ${name}`, () => {
    it('names a blob by the sha256 of its bytes and gives them back exactly', async () => {
      const store = make();
      const data = Buffer.from('From: a@b\r\n\r\nbody\r\n.\r\n\u0000\xff', 'latin1');
      const r = await store.put(chunks(data, 3));
      expect(r).toMatchObject({ sha256: sha(data), size: data.length, existed: false });
      expect((await store.get(r.sha256)).equals(data)).toBe(true);
      expect((await read(store.getStream(r.sha256))).equals(data)).toBe(true);
      expect(await store.has(r.sha256)).toBe(true);
    });

    it('stores identical bytes once and says so', async () => {
      const store = make();
      const data = Buffer.from('same bytes');
      const a = await store.put(chunks(data));
      const b = await store.put(chunks(data));
      expect(b).toMatchObject({ sha256: a.sha256, existed: true });
      const all: string[] = [];
      for await (const s of store.list()) all.push(s);
      expect(all).toEqual([a.sha256]);
    });

    it('streams large messages and round-trips them', async () => {
      const store = make();
      const data = Buffer.alloc(3 * 1024 * 1024 + 17);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
      const r = await store.put(chunks(data, 64 * 1024));
      expect(r.sha256).toBe(sha(data));
      expect((await read(store.getStream(r.sha256))).equals(data)).toBe(true);
    });

    it('refuses a message over the limit and keeps nothing of it', async () => {
      const store = make();
      await expect(store.put(chunks(Buffer.alloc(5000)), { maxBytes: 4000 })).rejects.toBeInstanceOf(MessageTooLargeError);
      const all: string[] = [];
      for await (const s of store.list()) all.push(s);
      expect(all).toEqual([]);
    });

    it('reports a missing blob with a typed error', async () => {
      const store = make();
      await expect(store.get('0'.repeat(64))).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.has('0'.repeat(64))).toBe(false);
    });

    it('deletes', async () => {
      const store = make();
      const r = await store.put(chunks(Buffer.from('bye')));
      await store.delete(r.sha256);
      expect(await store.has(r.sha256)).toBe(false);
    });
  });
}

blobStoreContract('local disk', () => createFsBlobStore({ dir: path.join(tempDir(), 'blobs') }));
blobStoreContract('local disk, no read cache', () => createFsBlobStore({ dir: path.join(tempDir(), 'blobs'), recentCacheBytes: 0 }));

describe('local disk layout', () => {
  it('is blobs/ab/cd/<sha256>.eml.gz and zcat gives the original', async () => {
    const dir = path.join(tempDir(), 'blobs');
    const store = createFsBlobStore({ dir });
    const data = Buffer.from('Subject: zcat me\r\n\r\nhello\r\n');
    const r = await store.put(chunks(data));
    await store.close();
    const file = path.join(dir, r.sha256.slice(0, 2), r.sha256.slice(2, 4), `${r.sha256}.eml.gz`);
    expect(fs.existsSync(file)).toBe(true);
    expect(execFileSync('zcat', [file]).equals(data)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('cleans temp files left by a crash', () => {
    const dir = path.join(tempDir(), 'blobs');
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tmp', 'abc.tmp'), 'half');
    createFsBlobStore({ dir });
    expect(fs.readdirSync(path.join(dir, 'tmp'))).toEqual([]);
  });

  it('fails the put (so SMTP answers 4xx) when the blob directory is removed under it', async () => {
    const dir = path.join(tempDir(), 'blobs');
    const store = createFsBlobStore({ dir });
    fs.rmSync(dir, { recursive: true });
    await expect(store.put(chunks(Buffer.from('small')))).rejects.toThrow(/removed/);
    await expect(store.put(chunks(Buffer.alloc(2 * 1024 * 1024, 7)))).rejects.toThrow();
  });

  it('replays blobs that were only in the journal when the process died', async () => {
    const dir = path.join(tempDir(), 'blobs');
    // A checkpoint that never completes stands for a crash before the blob files were synced.
    const store = createFsBlobStore({ dir, syncAll: () => new Promise(() => undefined) });
    const data = Buffer.from('Subject: survive\r\n\r\nkept by the journal\r\n');
    const r = await store.put(chunks(data));
    const file = path.join(dir, r.sha256.slice(0, 2), r.sha256.slice(2, 4), `${r.sha256}.eml.gz`);
    while (!fs.existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 10));
    fs.truncateSync(file, 0); // as after a power loss: the name survived, the unsynced data did not
    expect(fs.readdirSync(path.join(dir, 'journal')).length).toBeGreaterThan(0);
    const reopened = createFsBlobStore({ dir });
    expect(fs.existsSync(file)).toBe(true);
    expect((await reopened.get(r.sha256)).equals(data)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'journal')).filter((n) => n.endsWith('.pack') && fs.statSync(path.join(dir, 'journal', n)).size > 0)).toEqual([]);
    await reopened.close();
  });

  it('keeps a journal pack with a damaged record aside as evidence, and replays its good records', async () => {
    const { encodeRecords } = await import('../../src/store/pack.js');
    const zlib = await import('node:zlib');
    const dir = path.join(tempDir(), 'blobs');
    fs.mkdirSync(path.join(dir, 'journal'), { recursive: true });
    const good = Buffer.from('good message');
    const pack = encodeRecords([
      { sha256: sha(good), gz: zlib.gzipSync(good) },
      { sha256: sha(Buffer.from('claimed')), gz: zlib.gzipSync(Buffer.from('something else')) },
    ]);
    fs.writeFileSync(path.join(dir, 'journal', '000000000001.pack'), pack);
    const store = createFsBlobStore({ dir });
    expect((await store.get(sha(good))).equals(good)).toBe(true);
    expect(await store.has(sha(Buffer.from('claimed')))).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'journal'))).toContain('000000000001.pack.damaged');
    await store.close();
  });

  it('retires the journal at a checkpoint once the blob files are durable', async () => {
    const dir = path.join(tempDir(), 'blobs');
    const synced: string[][] = [];
    const store = createFsBlobStore({ dir, syncAll: async (files) => void synced.push(files) });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(chunks(Buffer.from(`message ${i}`)))));
    await store.close();
    expect(synced.flat().length).toBe(20);
    for (const r of results) expect(fs.existsSync(path.join(dir, r.sha256.slice(0, 2), r.sha256.slice(2, 4), `${r.sha256}.eml.gz`))).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'journal'))).toEqual([]);
  });
});
