/** Byte-level helpers on a raw message: where the header block ends, whether there is one, the body hash. */
import { createHash } from 'node:crypto';

export const EMPTY_SHA256 = createHash('sha256').digest('hex');

export function asBuffer(raw: Uint8Array): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

/**
 * Offset of the first byte after the header block: after the first CRLFCRLF or LFLF (an empty line),
 * or after a blank first line (an empty header block). -1 when there is no empty line at all.
 */
export function findBodyStart(buf: Buffer): number {
  if (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  if (buf.length >= 1 && buf[0] === 0x0a) return 1;
  let i = buf.indexOf(0x0a);
  while (i >= 0 && i + 1 < buf.length) {
    const next = buf[i + 1];
    if (next === 0x0a) return i + 2;
    if (next === 0x0d && buf[i + 2] === 0x0a) return i + 3;
    i = buf.indexOf(0x0a, i + 1);
  }
  return -1;
}

function sha256Hex(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** sha256 of the raw bytes after the header block (of empty input when there is no empty line). */
export function bodySha256(raw: Uint8Array): string {
  const buf = asBuffer(raw);
  const start = findBodyStart(buf);
  return start < 0 ? EMPTY_SHA256 : sha256Hex(buf.subarray(start));
}

const HEADER_FIELD = /^[ \t]*[!-9;-~]+[ \t]*:/;

/** End offset (exclusive, without the line break) of the line starting at `from`. */
function lineEnd(buf: Buffer, from: number): number {
  const nl = buf.indexOf(0x0a, from);
  let end = nl < 0 ? buf.length : nl;
  if (end > from && buf[end - 1] === 0x0d) end--;
  return end;
}

/**
 * Whether the input starts with a header field (`Name:`), allowing leading blanks and an mbox
 * `From ` line in front of it (mailparser tolerates both).
 */
export function hasHeaderBlock(buf: Buffer): boolean {
  if (buf.length === 0) return false;
  let start = 0;
  let end = lineEnd(buf, 0);
  if (buf.toString('latin1', 0, Math.min(end, 5)) === 'From ') {
    start = buf.indexOf(0x0a) + 1;
    if (start <= 0) return false;
    end = lineEnd(buf, start);
  }
  return HEADER_FIELD.test(buf.toString('latin1', start, Math.min(end, start + 1000)));
}
