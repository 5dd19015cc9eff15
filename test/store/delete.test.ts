/**
 * Deleting blobs for a purge, beside live SMTP sessions: a blob new mail needs again is kept, a
 * put racing a deletion ends with the bytes stored, and a deletion survives a crash (the blob
 * journal's replay must not bring it back).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFsBlobStore } from '../../src/store/fs-store.js';
import { tempDir } from '../helpers/tmp.js';

async function* chunks(buf: Buffer, onDone?: () => void): AsyncGenerator<Buffer> {
  try {
    for (let i = 0; i < buf.length; i += 1000) yield buf.subarray(i, i + 1000);
  } finally {
    onDone?.();
  }
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fileOf = (dir: string, s: string) => path.join(dir, s.slice(0, 2), s.slice(2, 4), `${s}.eml.gz`);

describe('blob deletion for purges', () => {
  it('deletes a watched blob nobody stored again, and keeps one that mail needed again since the watch', async () => {
    const store = createFsBlobStore({ dir: path.join(tempDir(), 'blobs') });
    const a = Buffer.from('Subject: a\r\n\r\npurge me\r\n');
    const b = Buffer.from('Subject: b\r\n\r\narrives again\r\n');
    await store.put(chunks(a));
    await store.put(chunks(b));
    store.watch([sha(a), sha(b)]);
    expect((await store.put(chunks(b))).existed).toBe(true);
    expect(await store.delete(sha(a))).toBe(true);
    expect(await store.delete(sha(b))).toBe(false);
    expect(await store.has(sha(a))).toBe(false);
    expect((await store.get(sha(b))).equals(b)).toBe(true);
    await store.close();
  });

  it('counts a put that is under way when the watch starts', async () => {
    const store = createFsBlobStore({ dir: path.join(tempDir(), 'blobs') });
    const data = Buffer.from('Subject: racing\r\n\r\nin flight\r\n');
    await store.put(chunks(data));
    let sourceDone!: () => void;
    const consumed = new Promise<void>((r) => (sourceDone = r));
    const again = store.put(chunks(data, () => sourceDone()));
    await consumed;
    store.watch([sha(data)]);
    await again;
    expect(await store.delete(sha(data))).toBe(false);
    expect(await store.has(sha(data))).toBe(true);
    await store.close();
  });

  it('a put of the same bytes during a deletion waits and stores them anew', async () => {
    const store = createFsBlobStore({ dir: path.join(tempDir(), 'blobs') });
    const small = Buffer.from('Subject: small\r\n\r\nagain\r\n');
    const large = Buffer.alloc(2 * 1024 * 1024 + 5, 'x');
    for (const data of [small, large]) {
      await store.put(chunks(data));
      const deleting = store.delete(sha(data));
      const put = store.put(chunks(data));
      expect(await deleting).toBe(true);
      await put;
      expect((await store.get(sha(data))).equals(data), `${data.length} bytes`).toBe(true);
    }
    await store.close();
  });

  it('a deleted blob is not brought back by the journal replay after a crash', async () => {
    const dir = path.join(tempDir(), 'blobs');
    const store = createFsBlobStore({ dir });
    const data = Buffer.from('Subject: gone\r\n\r\nfor good\r\n');
    await store.put(chunks(data));
    // Still in the journal's pack (no checkpoint yet): start-up would replay it.
    expect(fs.readdirSync(path.join(dir, 'journal')).some((n) => fs.statSync(path.join(dir, 'journal', n)).size > 0)).toBe(true);
    expect(await store.delete(sha(data))).toBe(true);
    expect(fs.existsSync(fileOf(dir, sha(data)))).toBe(false);
    // The process dies here (no close); the next start replays whatever packs are left.
    const reopened = createFsBlobStore({ dir });
    expect(await reopened.has(sha(data))).toBe(false);
    await reopened.close();
    await store.close();
  });
});
