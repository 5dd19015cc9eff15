import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deflateOptions } from '../../src/store/compression.js';

const base64Lines = (bytes: Buffer): string => bytes.toString('base64').replace(/.{76}/g, '$&\r\n');
const words = 'the quarterly budget review meeting is moved to thursday please confirm attendance '.repeat(2000);

describe('deflateOptions', () => {
  it('gives small messages the plain level without sampling', () => {
    expect(deflateOptions(Buffer.from(base64Lines(randomBytes(3000))), 1)).toEqual({ level: 1 });
  });

  it('Huffman-codes a large message whose body is base64 of random bytes', () => {
    const msg = Buffer.from(`Subject: report\r\n\r\n${base64Lines(randomBytes(90_000))}`);
    expect(deflateOptions(msg, 1)).toEqual({ level: 1, strategy: zlib.constants.Z_HUFFMAN_ONLY });
  });

  it('keeps LZ77 for a large message of text', () => {
    expect(deflateOptions(Buffer.from(`Subject: words\r\n\r\n${words}`), 6)).toEqual({ level: 6 });
  });

  it('either way the gzip stream gives back the original bytes', () => {
    for (const msg of [Buffer.from(`S: x\r\n\r\n${base64Lines(randomBytes(60_000))}`), Buffer.from(words)]) {
      expect(zlib.gunzipSync(zlib.gzipSync(msg, deflateOptions(msg, 1))).equals(msg)).toBe(true);
    }
  });
});
