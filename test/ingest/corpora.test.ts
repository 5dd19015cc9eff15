import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMail } from '../../src/ingest/parse.js';
import type { ParsedMail } from '../../src/ingest/types.js';
import { type Corpus, enmimeCorpus, enmimeLowQualityCorpus, pythonEmailCorpus, toCrlf } from '../helpers/corpora.js';

/**
 * Parses every message of the real-world corpora installed on this machine (Debian packages, see
 * /work/shared/corpora.md), as shipped (LF) and as it would arrive over SMTP (CRLF).
 */

const opts = { headerNames: ['received', 'x-mailer'], maxTextChars: 50_000 };

interface Row {
  corpus: string;
  variant: 'LF' | 'CRLF';
  files: number;
  ok: number;
  partial: number;
  defects: Map<string, number>;
}
const rows: Row[] = [];

function sane(m: ParsedMail): void {
  expect(typeof m.subject).toBe('string');
  expect(typeof m.text).toBe('string');
  expect(m.text.length).toBeLessThanOrEqual(opts.maxTextChars);
  expect(['ok', 'partial']).toContain(m.status);
  expect(m.bodySha256).toMatch(/^[0-9a-f]{64}$/);
  expect(m.messageId === null || (typeof m.messageId === 'string' && !/^<|>$/.test(m.messageId))).toBe(true);
  expect(m.inReplyTo === null || typeof m.inReplyTo === 'string').toBe(true);
  if (m.date !== null) expect(new Date(m.date).toISOString()).toBe(m.date);
  for (const list of [m.from, m.sender, m.to, m.cc, m.bcc, m.replyTo]) {
    for (const a of list) {
      expect(a.address.length).toBeGreaterThan(0);
      const at = a.address.lastIndexOf('@');
      if (at >= 0) expect(a.address.slice(at + 1)).toBe(a.address.slice(at + 1).toLowerCase());
      expect(typeof a.name).toBe('string');
    }
  }
  for (const ref of m.references) expect(ref.length).toBeGreaterThan(0);
  for (const att of m.attachments) {
    expect(att.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(att.size).toBeGreaterThanOrEqual(0);
    expect(typeof att.contentType).toBe('string');
    expect(att.filename === null || typeof att.filename === 'string').toBe(true);
    expect(att.contentId === null || !/^<|>$/.test(att.contentId)).toBe(true);
    expect('content' in att).toBe(false);
  }
  for (const d of m.defects) expect(d).toMatch(/^[a-z]+(-[a-z]+)*$/);
  if (m.status === 'partial') expect(m.defects.some((d) => d === 'parse-error' || d === 'no-header-block')).toBe(true);
  expect(Object.keys(m.headers).sort()).toEqual([...opts.headerNames].sort());
}

/** Exact decoded subjects (and a few other facts) of known files, checked in both variants. */
const KNOWN: Record<string, Record<string, (m: ParsedMail) => void>> = {
  'python-email': {
    'msg_01.txt': (m) => {
      expect(m.subject).toBe('This is a test message');
      expect(m.from).toEqual([{ address: 'bbb@ddd.com', name: 'John X. Doe' }]);
      expect(m.messageId).toBe('15090.61304.110929.45684@aaa.zzz.org');
      expect(m.date).toBe('2001-05-04T18:05:44.000Z');
    },
    'msg_16.txt': (m) => {
      expect(m.subject).toBe('Delivery Notification: Delivery has failed');
      expect(m.from[0]?.address).toBe('postmaster@ucla.edu');
      expect(m.attachments.map((a) => a.contentType)).toEqual(['message/rfc822']);
    },
    'msg_25.txt': (m) => {
      expect(m.subject).toBe(
        'Returned mail: Too many hops 19 (17 max): from <linuxuser-admin@www.linux.org.uk> via [199.164.235.226], to <scoffman@wellpartner.com>',
      );
    },
    'msg_36.txt': (m) => expect(m.subject).toBe('I-D ACTION:draft-ietf-mboned-mix-00.txt'),
    // starts with body text, no header block
    'msg_19.txt': (m) => {
      expect(m.status).toBe('partial');
      expect(m.defects[0]).toBe('no-header-block');
      expect(m.text).toMatch(/^Send Ppp mailing list submissions to/);
    },
  },
  'enmime-mail': {
    'qp-utf8-header.raw': (m) => {
      expect(m.subject).toBe('MIME UTF8 Test ¢ More Text');
      expect(m.from.map((a) => a.name)).toEqual(['James Hillyerd', 'André Pirard']); // ISO-8859-1 Q word
      expect(m.to).toEqual([{ address: 'marczak@inbucket.com', name: 'Mirosław Marczak' }]);
    },
    'qp-ascii-header.raw': (m) => expect(m.subject).toBe('Test QP Subject!'),
    'ctype-bug.raw': (m) => expect(m.subject).toBe('Welcome to Papertrail'),
    'mime-bad-8bit-filename.raw': (m) => {
      expect(m.subject).toBe('Malformed test');
      expect(m.attachments.map((a) => a.filename)).toEqual(['管理.doc']);
    },
    'html-mime-inline.raw': (m) => expect(m.subject).toBe('MIME test 1'),
  },
  'enmime-low-quality': {
    'bad-final-boundary.raw': (m) => {
      expect(m.subject).toBe('Attachment');
      expect(m.status).toBe('ok');
      expect(m.defects).toContain('missing-final-boundary');
    },
    'bad-header-start.raw': (m) => expect(m.subject).toBe('plain text'),
    'unk-charset-html-only.raw': (m) => expect(m.text).toContain('Hello World!'),
  },
};

const corpora: Corpus[] = [pythonEmailCorpus(), enmimeCorpus(), enmimeLowQualityCorpus()];

for (const corpus of corpora) {
  const absent = corpus.files.length === 0;
  if (absent) console.warn(`[corpora] ${corpus.name}: nothing at ${corpus.dir}; skipping (install: ${corpus.install})`);

  describe(`corpus ${corpus.name}`, () => {
    it.skipIf(absent)(`parses all files as LF and as CRLF (${corpus.files.length} files)`, async () => {
      const lf: Row = { corpus: corpus.name, variant: 'LF', files: 0, ok: 0, partial: 0, defects: new Map() };
      const crlf: Row = { ...lf, variant: 'CRLF', defects: new Map() };
      for (const file of corpus.files) {
        const raw = readFileSync(file);
        const results: ParsedMail[] = [];
        for (const [row, input] of [
          [lf, raw],
          [crlf, toCrlf(raw)],
        ] as const) {
          let m: ParsedMail;
          try {
            m = await parseMail(input, opts);
          } catch (err) {
            throw new Error(`${basename(file)} (${row.variant}): parseMail threw: ${String(err)}`);
          }
          try {
            sane(m);
            KNOWN[corpus.name]?.[basename(file)]?.(m);
          } catch (err) {
            throw new Error(`${basename(file)} (${row.variant}): ${err instanceof Error ? err.message : String(err)}`);
          }
          row.files++;
          if (m.status === 'ok') row.ok++;
          else row.partial++;
          for (const d of m.defects) row.defects.set(d, (row.defects.get(d) ?? 0) + 1);
          results.push(m);
        }
        // Line endings must not change what we read from a message.
        const [a, b] = results as [ParsedMail, ParsedMail];
        const facts = (m: ParsedMail) => ({
          subject: m.subject,
          from: m.from,
          to: m.to,
          messageId: m.messageId,
          date: m.date,
          status: m.status,
          defects: m.defects,
          attachments: m.attachments.map((x) => [x.filename, x.contentType]),
        });
        expect(facts(b), `${basename(file)}: LF vs CRLF`).toEqual(facts(a));
      }
      rows.push(lf, crlf);
      expect(lf.files).toBe(corpus.files.length);
    });
  });
}

it.skipIf(!corpora.some((c) => c.name === 'enmime-low-quality' && c.files.length > 0))(
  'low-quality enmime files are either parsed (ok) or flagged',
  async () => {
    for (const file of enmimeLowQualityCorpus().files) {
      const m = await parseMail(readFileSync(file), opts);
      expect(m.status === 'ok' || m.defects.length > 0, basename(file)).toBe(true);
    }
  },
);

afterAll(() => {
  if (rows.length === 0) return;
  const lines = ['corpus              variant  files    ok  partial  defects'];
  for (const r of rows) {
    const defects = [...r.defects.entries()]
      .sort((x, y) => y[1] - x[1])
      .map(([d, n]) => `${d}:${n}`)
      .join(' ');
    lines.push(
      `${r.corpus.padEnd(20)}${r.variant.padEnd(9)}${String(r.files).padStart(5)}${String(r.ok).padStart(6)}${String(r.partial).padStart(9)}  ${defects}`,
    );
  }
  console.log(lines.join('\n'));
});
