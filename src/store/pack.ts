import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * The blob journal: append-only pack files under blobs/journal/ that make small blobs durable with
 * one fdatasync per batch instead of three fsyncs per blob. A record is
 *   "<sha256 hex> <length>\n" + <gzip bytes> + "\n"
 * A torn last record (crash mid-write, never acknowledged) is recognised by its length and ignored.
 */
export interface PackRecord {
  sha256: string;
  gz: Buffer;
}

export const packName = (n: number): string => `${String(n).padStart(12, '0')}.pack`;

export function listPacks(dir: string): Array<{ file: string; n: number }> {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => /^(\d{12})\.pack$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: path.join(dir, m[0]), n: Number(m[1]) }))
    .sort((a, b) => a.n - b.n);
}

export function encodeRecords(records: PackRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) parts.push(Buffer.from(`${r.sha256} ${r.gz.length}\n`, 'latin1'), r.gz, Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** Complete records of a pack; `valid` says whether each decompresses to bytes matching its name. */
export function readPack(file: string, check = true): Array<PackRecord & { valid: boolean }> {
  const data = fs.readFileSync(file);
  const out: Array<PackRecord & { valid: boolean }> = [];
  let pos = 0;
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) break;
    const m = /^([0-9a-f]{64}) (\d+)$/.exec(data.subarray(pos, nl).toString('latin1'));
    if (!m) break;
    const len = Number(m[2]);
    const end = nl + 1 + len;
    if (end + 1 > data.length || data[end] !== 0x0a) break;
    const gz = data.subarray(nl + 1, end);
    let valid = true;
    if (check) {
      try {
        valid = createHash('sha256').update(zlib.gunzipSync(gz)).digest('hex') === m[1];
      } catch {
        valid = false;
      }
    }
    out.push({ sha256: m[1]!, gz, valid });
    pos = end + 1;
  }
  return out;
}
