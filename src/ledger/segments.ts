import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { GENESIS, type ChainFields, type LedgerRecord } from './records.js';

/** Segment files are named by the seq of their first record, zero-padded so they sort. */
export const segmentName = (firstSeq: number): string => `${String(firstSeq).padStart(16, '0')}.jsonl`;

export function listSegments(dir: string): Array<{ file: string; firstSeq: number }> {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => /^(\d{16})\.jsonl$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: path.join(dir, m[0]), firstSeq: Number(m[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

export const lineHash = (line: string): string => createHash('sha256').update(line).digest('hex');

/** One record of a chained log (the ledger, the audit trail) with where it stands. */
export interface ChainLine<R extends ChainFields = LedgerRecord> {
  record: R;
  line: string;
  file: string;
  lineNo: number;
}

/** Every record from `fromSeq` on, in order, with its exact line (for hashing). */
export async function* readLines<R extends ChainFields = LedgerRecord>(dir: string, fromSeq = 1, toSeq = Infinity): AsyncGenerator<ChainLine<R>> {
  const segments = listSegments(dir);
  let start = 0;
  for (let i = 0; i < segments.length; i++) if (segments[i]!.firstSeq <= fromSeq) start = i;
  for (const seg of segments.slice(start)) {
    const rl = readline.createInterface({ input: fs.createReadStream(seg.file, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      if (line === '') continue;
      const record = JSON.parse(line) as R;
      if (record.seq > toSeq) {
        // Stop before a line that a live writer may still be appending.
        rl.close();
        return;
      }
      if (record.seq >= fromSeq) yield { record, line, file: seg.file, lineNo };
    }
  }
}

export interface ChainBreak {
  seq: number | null;
  file: string;
  lineNo: number;
  reason: string;
}

/**
 * Walks the whole chain; returns the count and the first break, if any. `onRecord` sees every
 * record that is still linked, with its place, so a caller can name the record before a break.
 */
export async function checkChain<R extends ChainFields = LedgerRecord>(
  dir: string,
  onRecord?: (r: R, at: { file: string; lineNo: number }) => void,
): Promise<{ records: number; lastSeq: number; firstBreak: ChainBreak | null }> {
  let prev = GENESIS;
  let expected = 1;
  let records = 0;
  const segments = listSegments(dir);
  for (const seg of segments) {
    const rl = readline.createInterface({ input: fs.createReadStream(seg.file, 'utf8'), crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      if (line === '') continue;
      let record: R;
      try {
        record = JSON.parse(line) as R;
      } catch {
        rl.close();
        return { records, lastSeq: expected - 1, firstBreak: { seq: null, file: seg.file, lineNo, reason: 'line is not valid JSON' } };
      }
      const fail = (reason: string) => {
        rl.close();
        return { records, lastSeq: expected - 1, firstBreak: { seq: record.seq ?? null, file: seg.file, lineNo, reason } };
      };
      if (record.seq !== expected) return fail(`expected seq ${expected}, found ${String(record.seq)} (a record is missing or out of order)`);
      if (record.prev !== prev) return fail(`prev hash does not match the previous record (record ${expected - 1} was edited, or this one was)`);
      prev = lineHash(line);
      expected++;
      records++;
      onRecord?.(record, { file: seg.file, lineNo });
    }
  }
  return { records, lastSeq: expected - 1, firstBreak: null };
}

/**
 * Finds the last complete record of the newest segment. A torn tail (crash mid-write, never
 * acknowledged because its fsync never returned) is moved aside into torn-<time>.bin, for the
 * record, and cut from the segment.
 */
export async function recoverTail(dir: string): Promise<{ lastSeq: number; lastHash: string; torn: string | null }> {
  const segments = listSegments(dir);
  const last = segments.at(-1);
  if (!last) return { lastSeq: 0, lastHash: GENESIS, torn: null };
  const data = await fsp.readFile(last.file);
  let end = data.length;
  let torn: string | null = null;
  // Walk back over an incomplete or unparsable last line.
  const cut = async (at: number) => {
    const tornFile = path.join(dir, `torn-${new Date().toISOString().replace(/[:.]/g, '-')}.bin`);
    await fsp.writeFile(tornFile, data.subarray(at, end));
    const h = await fsp.open(last.file, 'r+');
    await h.truncate(at);
    await h.sync();
    await h.close();
    torn = tornFile;
    end = at;
  };
  if (end > 0 && data[end - 1] !== 0x0a) {
    const nl = data.lastIndexOf(0x0a, end - 1);
    await cut(nl + 1);
  }
  while (end > 0) {
    const nl = data.lastIndexOf(0x0a, end - 2);
    const line = data.subarray(nl + 1, end - 1).toString('utf8');
    try {
      const record = JSON.parse(line) as ChainFields;
      return { lastSeq: record.seq, lastHash: lineHash(line), torn };
    } catch {
      await cut(nl + 1);
    }
  }
  // An empty newest segment: the previous segment holds the tail.
  if (segments.length > 1) {
    await fsp.rm(last.file);
    return recoverTail(dir);
  }
  return { lastSeq: 0, lastHash: GENESIS, torn };
}
