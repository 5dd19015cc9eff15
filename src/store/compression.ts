import zlib from 'node:zlib';

/**
 * How to deflate one message. Measured on the benchmark corpus (bench/ingest.ts, 2 vCPU EPYC):
 * - ~5 KB text mail: level 1 costs 64 µs and keeps 43.4% of the bytes; level 6, 142 µs and 42.7%.
 * - ~100 KB mail carrying a base64 PDF: every level from 1 to 6 takes ~2.5 ms for 74% (LZ77 finds
 *   nothing in base64 of compressed data, and searching for it is the cost), while Huffman-only
 *   coding takes 0.66 ms for 76%.
 * So: a message past SAMPLE_FROM whose sample barely compresses is Huffman-coded; everything else
 * gets `level`. Either way the blob is an ordinary gzip stream (`zcat` reads it).
 */
export const DEFAULT_GZIP_LEVEL = 1;

/** Smaller messages always get the level: the sample would cost more than it saves. */
const SAMPLE_FROM = 32 * 1024;
const SAMPLE_BYTES = 8 * 1024;
/** Compressed/original above this and LZ77 is not worth its time (base64 of binary data: ~0.75). */
const INCOMPRESSIBLE = 0.7;

export function deflateOptions(data: Buffer, level: number): zlib.ZlibOptions {
  if (data.length < SAMPLE_FROM || level === 0) return { level };
  // The middle of a message is body (an attachment if there is one), not headers.
  const start = Math.floor((data.length - SAMPLE_BYTES) / 2);
  const sample = data.subarray(start, start + SAMPLE_BYTES);
  const ratio = zlib.deflateRawSync(sample, { level: 1 }).length / sample.length;
  return ratio > INCOMPRESSIBLE ? { level, strategy: zlib.constants.Z_HUFFMAN_ONLY } : { level };
}
