import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { listSegments } from './segments.js';

/** The seq of the last complete record, read without taking the writer's place. */
export async function readLedgerTail(dir: string): Promise<number> {
  const last = listSegments(dir).at(-1);
  if (!last || !fs.existsSync(last.file)) return 0;
  const handle = await fsp.open(last.file, 'r');
  try {
    const { size } = await handle.stat();
    const len = Math.min(size, 1024 * 1024);
    const buf = Buffer.alloc(len);
    await handle.read(buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const r = JSON.parse(lines[i]!) as { seq?: unknown };
        if (typeof r.seq === 'number') return r.seq;
      } catch {
        /* a partial line at either end of the window */
      }
    }
    return last.firstSeq - 1;
  } finally {
    await handle.close();
  }
}
