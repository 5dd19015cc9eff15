import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileSink, type ByteSink } from '../../src/export/byte-sink.js';
import { ZipWriter } from '../../src/export/zip.js';
import { tempDir } from '../helpers/tmp.js';
import { readZipWithPython } from './python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('zip writer', () => {
  it('writes entries that zipfile and unzip read back with matching CRCs, whole and streamed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a.zip');
    const sink = await openFileSink(file);
    const zip = new ZipWriter(sink, path.join(dir, 'spool'));
    const a = Buffer.from('From: a@example.com\r\n\r\nhello\r\n');
    const b = Buffer.alloc(3_000_000, 'b');
    const empty = Buffer.alloc(0);
    await zip.addBuffer('2024-03-01_1204_a_1.eml', a, new Date(Date.UTC(2024, 2, 1, 12, 4, 58)));
    await zip.addStream('2024-03-01_1205_b_2.eml', chunks(b, 65536), new Date(Date.UTC(2024, 2, 1, 12, 5)));
    await zip.addBuffer('empty.eml', empty, new Date(Date.UTC(1970, 0, 1)));
    await zip.addStream('empty-streamed.eml', chunks(empty, 1), new Date(Date.UTC(2024, 0, 1)));
    await zip.finish();
    await sink.close();

    const read = await readZipWithPython(file);
    expect(read.bad).toBeNull();
    expect(read.entries.map((e) => [e.name, e.size, e.sha256])).toEqual([
      ['2024-03-01_1204_a_1.eml', a.length, sha(a)],
      ['2024-03-01_1205_b_2.eml', b.length, sha(b)],
      ['empty.eml', 0, sha(empty)],
      ['empty-streamed.eml', 0, sha(empty)],
    ]);
    expect(read.entries[0]!.date_time).toEqual([2024, 3, 1, 12, 4, 58]);
    expect(read.entries[2]!.date_time.slice(0, 3)).toEqual([1980, 1, 1]); // DOS dates start in 1980
    expect(execFileSync('unzip', ['-tq', file]).toString()).toMatch(/No errors detected/);
    expect(fs.existsSync(path.join(dir, 'spool'))).toBe(false);
  });

  it('more than 65,535 entries: ZIP64 end records, central directory spooled to disk and removed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'many.zip');
    const sink = await openFileSink(file, { sync: false });
    const spool = path.join(dir, 'spool');
    const zip = new ZipWriter(sink, spool);
    const n = 70_000;
    for (let i = 0; i < n; i++) await zip.addBuffer(`m${i}.eml`, Buffer.from(`message ${i}\n`), new Date(Date.UTC(2024, 0, 1)));
    expect(fs.existsSync(spool)).toBe(true);
    await zip.finish();
    await sink.close();
    expect(fs.existsSync(spool)).toBe(false);
    const read = await readZipWithPython(file);
    expect(read.bad).toBeNull();
    expect(read.entries.length).toBe(n);
    expect(read.entries[n - 1]).toMatchObject({ name: `m${n - 1}.eml`, sha256: sha(Buffer.from(`message ${n - 1}\n`)) });
    expect(execFileSync('unzip', ['-tq', file]).toString()).toMatch(/No errors detected/);
  }, 60_000);

  it('entries past 4 GiB get ZIP64 offsets (a sparse file: the first 4 GiB are a hole)', async () => {
    const file = path.join(tempDir(), 'far.zip');
    const fd = fs.openSync(file, 'w');
    const start = 2 ** 32 + 12345;
    let position = start;
    // A sink that starts writing at `start`, as if 4 GiB of entries came before.
    const sink: ByteSink = {
      get bytes() {
        return position;
      },
      write(chunk) {
        fs.writeSync(fd, chunk, 0, chunk.length, position);
        position += chunk.length;
        return undefined;
      },
      writeText(text) {
        return this.write(Buffer.from(text));
      },
      digest: () => '',
      close: async () => fs.closeSync(fd),
      destroy: async () => fs.closeSync(fd),
    };
    const zip = new ZipWriter(sink, path.join(path.dirname(file), 'spool'));
    const a = Buffer.from('far away\r\n');
    await zip.addBuffer('far.eml', a, new Date(Date.UTC(2024, 0, 1)));
    await zip.addStream('far-streamed.eml', chunks(a, 3), new Date(Date.UTC(2024, 0, 1)));
    await zip.finish();
    await sink.close();
    const read = await readZipWithPython(file);
    expect(read.bad).toBeNull();
    expect(read.entries.map((e) => [e.name, e.sha256])).toEqual([['far.eml', sha(a)], ['far-streamed.eml', sha(a)]]);
  });
});
