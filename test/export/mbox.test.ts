import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileSink } from '../../src/export/byte-sink.js';
import type { ExportItem } from '../../src/export/manifest.js';
import { asctime, fromLine, MboxrdQuoter, writeMboxMessage } from '../../src/export/mbox.js';
import { tempDir } from '../helpers/tmp.js';
import { readMboxWithPython } from './python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Quotes `input` fed in the given chunk sizes (cycled). */
function quote(input: Buffer, sizes: number[] = [input.length || 1]): Buffer {
  const q = new MboxrdQuoter();
  const out: Buffer[] = [];
  let i = 0;
  for (let k = 0; i < input.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    out.push(...q.push(input.subarray(i, i + n)));
    i += n;
  }
  out.push(...q.end());
  return Buffer.concat(out);
}

const unquote = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/^>(>*From )/gm, '$1'), 'latin1');

const CASES: Array<[string, string, string]> = [
  ['plain CRLF', 'Subject: a\r\n\r\nhello\r\n', 'Subject: a\r\n\r\nhello\r\n\n'],
  ['From line in body', 'S: a\n\nFrom here\n', 'S: a\n\n>From here\n\n'],
  ['already quoted lines get one more', 'S: a\n\n>From x\n>>From y\r\n', 'S: a\n\n>>From x\n>>>From y\r\n\n'],
  ['message starting with From', 'From someone\nS: a\n', '>From someone\nS: a\n\n'],
  ['not at a line start', 'S: a\n\nsaid From here\n xFrom\n', 'S: a\n\nsaid From here\n xFrom\n\n'],
  ['almost', 'S: a\n\nFrom\n>Fro\n>>\nFromage\n>From\n', 'S: a\n\nFrom\n>Fro\n>>\nFromage\n>From\n\n'],
  ['From at the very end, unterminated', 'S: a\n\n>>From ', 'S: a\n\n>>>From \n\n'],
  ['candidate prefix at the end, unterminated', 'S: a\n\n>>Fr', 'S: a\n\n>>Fr\n\n'],
  ['last line unterminated', 'S: a\n\nbye', 'S: a\n\nbye\n\n'],
  ['empty lines', '\n\n\n', '\n\n\n\n'],
  ['empty message', '', '\n'],
];

describe('mboxrd quoting', () => {
  it.each(CASES)('%s', (_name, input, expected) => {
    const buf = Buffer.from(input, 'latin1');
    expect(quote(buf).toString('latin1')).toBe(expected);
    // Every way of splitting the input into chunks gives the same bytes.
    for (let a = 1; a <= buf.length; a++) {
      expect(quote(buf, [a]).toString('latin1'), `chunks of ${a}`).toBe(expected);
      for (let b = 1; b <= 3; b++) expect(quote(buf, [a, b]).toString('latin1'), `chunks of ${a},${b}`).toBe(expected);
    }
  });

  it('round-trips: un-quoting gives back the exact bytes (the separator aside)', () => {
    const tricky = Buffer.from(['From a', '>From b', '>>>>From c', 'From', '>', 'x From y', '', '\r', '>From\r', 'From \r'].join('\r\n') + '\r\n', 'latin1');
    const body = Buffer.concat([tricky, Buffer.from(Array.from({ length: 2000 }, (_, i) => `${'>'.repeat(i % 5)}From line ${i}\n`).join(''))]);
    for (const sizes of [[body.length], [1], [7, 3], [4096]]) {
      const q = quote(body, sizes);
      expect(unquote(q.subarray(0, -1)).equals(body)).toBe(true);
      expect(q.toString('latin1').split('\n').some((l) => l.startsWith('From '))).toBe(false);
    }
  });

  it('a line of a million ">" before From costs no memory per ">" and is quoted', () => {
    const input = Buffer.concat([Buffer.from('S: a\n\n'), Buffer.alloc(1_000_000, '>'), Buffer.from('From x\n')]);
    const q = quote(input, [65536]);
    expect(q.length).toBe(input.length + 2);
    expect(unquote(q.subarray(0, -1)).equals(input)).toBe(true);
  });
});

describe('From lines', () => {
  it('asctime in UTC with a space-padded day', () => {
    expect(asctime(Date.UTC(2024, 2, 5, 10, 0, 7))).toBe('Tue Mar  5 10:00:07 2024');
    expect(asctime(Date.UTC(2023, 11, 25, 23, 59, 59))).toBe('Mon Dec 25 23:59:59 2023');
  });

  it('envelope sender, MAILER-DAEMON for the null sender, no whitespace', () => {
    const at = { firstSeen: '2024-03-05T10:00:00.000Z', sortTime: 0 };
    expect(fromLine({ ...at, envelopeSender: 'alice@example.com' }).toString()).toBe('From alice@example.com Tue Mar  5 10:00:00 2024\n');
    expect(fromLine({ ...at, envelopeSender: '' }).toString()).toBe('From MAILER-DAEMON Tue Mar  5 10:00:00 2024\n');
    expect(fromLine({ ...at, envelopeSender: null }).toString()).toMatch(/^From MAILER-DAEMON /);
    expect(fromLine({ ...at, envelopeSender: '"a b"@x\t' }).toString()).toMatch(/^From "a_b"@x_ Tue/);
  });
});

describe("Python's mailbox module reads what we write", () => {
  it('yields every message, byte for byte after mboxrd un-quoting, CRLF and LF alike', async () => {
    const messages = [
      'From: a@example.com\r\nSubject: crlf\r\n\r\nFrom the start of a line\r\n>From quoted\r\n>>From twice\r\n\r\n',
      'From: b@example.com\nSubject: lf only\n\nFrom here\n\n\nFrom there\n',
      'From: c@example.com\r\nSubject: empty lines at the end\r\n\r\nx\r\n\r\n\r\n',
      `From: d@example.com\r\nSubject: long\r\n\r\n${'>'.repeat(70_000)}From long\r\n${'y'.repeat(300_000)}\r\n`,
    ].map((s) => Buffer.from(s, 'utf8'));
    const file = path.join(tempDir(), 'out.mbox');
    const sink = await openFileSink(file);
    for (const [i, raw] of messages.entries()) {
      const item = { entry: { id: i, sha256: sha(raw), size: raw.length }, envelopeSender: i === 1 ? '' : `sender${i}@example.com`, firstSeen: '2024-03-05T10:00:00Z', sortTime: 0 };
      // Streamed in small chunks for one message, whole for the others.
      const body = i === 3 ? (async function* () {
        for (let o = 0; o < raw.length; o += 1000) yield raw.subarray(o, o + 1000);
      })() : raw;
      await writeMboxMessage(sink, item as unknown as ExportItem, body);
    }
    await sink.close();
    const read = await readMboxWithPython(file);
    expect(read.map((m) => m.sha256)).toEqual(messages.map(sha));
    expect(read.map((m) => m.from.split(' ')[0])).toEqual(['sender0@example.com', 'MAILER-DAEMON', 'sender2@example.com', 'sender3@example.com']);
    expect(Buffer.from(read[0]!.b64, 'base64').equals(messages[0]!)).toBe(true);
  });

  it('a message without a final line break comes back with one (documented)', async () => {
    const raw = Buffer.from('From: a@example.com\r\nSubject: cut\r\n\r\nno end');
    const file = path.join(tempDir(), 'cut.mbox');
    const sink = await openFileSink(file);
    await writeMboxMessage(sink, { entry: { id: 1 }, envelopeSender: 'a@example.com', firstSeen: '2024-03-05T10:00:00Z', sortTime: 0 } as unknown as ExportItem, raw);
    await sink.close();
    const [m] = await readMboxWithPython(file);
    expect(Buffer.from(m!.b64, 'base64').toString()).toBe(`${raw.toString()}\n`);
  });
});
