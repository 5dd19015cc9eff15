import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { allMessageIds, bodySha256, fallbackParse, firstMessageId, parseDateHeader, parseMail, stripHtml } from '../../src/ingest/parse.js';
import type { ParsedMail } from '../../src/ingest/types.js';

const opts = { headerNames: [] as string[], maxTextChars: 10_000 };

/** Builds a CRLF message from header lines and a body (body given with \n, sent as CRLF). */
function msg(headers: string[], body = ''): Buffer {
  return Buffer.from(headers.join('\r\n') + '\r\n\r\n' + body.replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Concatenates latin1 text and raw bytes (hex) into one message buffer. */
function bytes(...parts: (string | { hex: string })[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\r?\n/g, '\r\n'), 'latin1') : Buffer.from(p.hex, 'hex'))));
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const BASE = [
  'From: Alice <alice@example.org>',
  'To: bob@example.net',
  'Subject: test',
  'Date: Tue, 12 Mar 2024 10:15:01 +0100',
  'Message-ID: <m1@example.org>',
];

function expectSane(m: ParsedMail): void {
  expect(typeof m.subject).toBe('string');
  expect(typeof m.text).toBe('string');
  expect(m.status === 'ok' || m.status === 'partial').toBe(true);
  expect(m.bodySha256).toMatch(/^[0-9a-f]{64}$/);
  expect(m.messageId === null || typeof m.messageId === 'string').toBe(true);
  expect(m.date === null || !Number.isNaN(Date.parse(m.date))).toBe(true);
  for (const list of [m.from, m.sender, m.to, m.cc, m.bcc, m.replyTo]) {
    expect(Array.isArray(list)).toBe(true);
    for (const a of list) {
      expect(typeof a.address).toBe('string');
      expect(a.address.length).toBeGreaterThan(0);
      expect(typeof a.name).toBe('string');
    }
  }
  for (const a of m.attachments) {
    expect(Object.keys(a).sort()).toEqual(['contentId', 'contentType', 'filename', 'inline', 'sha256', 'size']);
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Number.isInteger(a.size) && a.size >= 0).toBe(true);
  }
  expect(Array.isArray(m.defects)).toBe(true);
  expect(Array.isArray(m.references)).toBe(true);
  // plain data: survives structured clone unchanged
  expect(structuredClone(m)).toEqual(m);
}

describe('parseMail: headers and addresses', () => {
  const raw = msg(
    [
      'Return-Path: <alice@example.org>',
      'X-Original-To: archive@Example.NET',
      'Received: from a by b;',
      '\tTue, 12 Mar 2024 10:15:01 +0100',
      'Received: from c by d; Tue, 12 Mar 2024 10:15:00 +0100',
      'From: "=?UTF-8?B?SsO8cmdlbiBHcm/Dnw==?=" <Juergen.Gross@MAIL.Example.ORG>',
      'Sender: list-bounces@Lists.Example.ORG',
      'To: Bob <bob@EXAMPLE.net>, Team: a@Team.Example, "B, C" <b@team.example>;,',
      ' undisclosed-recipients:;',
      'Cc: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>, not-an-address, "Name Only" <>, <@>',
      'Bcc: hidden@example.com',
      'Reply-To: Replies <replies@EXAMPLE.org>',
      'Subject: =?UTF-8?Q?Caf=C3=A9_?= =?UTF-8?Q?cr=C3=A8me?= and more',
      'Date: Tue, 12 Mar 2024 10:15:01 +0100 (CET)',
      'Message-ID: <CAF=abc123@mail.example.org>',
      'In-Reply-To: <parent@example.org> (Bob\'s message of yesterday)',
      'References: <root@example.org>',
      '  <parent@example.org>',
      'X-Custom: =?UTF-8?Q?first_=E2=9C=93?=',
      'x-custom: second',
    ],
    'Hello body\n',
  );

  it('extracts, decodes and normalises the envelope headers', async () => {
    const m = await parseMail(raw, { headerNames: ['x-original-to', 'X-Custom', 'received', 'x-absent'], maxTextChars: 1000 });
    expectSane(m);
    expect(m.status).toBe('ok');
    expect(m.defects).toEqual([]);
    expect(m.subject).toBe('Café crème and more');
    expect(m.from).toEqual([{ address: 'Juergen.Gross@mail.example.org', name: 'Jürgen Groß' }]);
    expect(m.sender).toEqual([{ address: 'list-bounces@lists.example.org', name: '' }]);
    expect(m.to).toEqual([
      { address: 'bob@example.net', name: 'Bob' },
      { address: 'a@team.example', name: '' },
      { address: 'b@team.example', name: 'B, C' },
    ]);
    // entries without an address are dropped (a bare word is read as a display name)
    expect(m.cc).toEqual([{ address: 'andre@example.com', name: 'André' }]);
    expect(m.bcc).toEqual([{ address: 'hidden@example.com', name: '' }]);
    expect(m.replyTo).toEqual([{ address: 'replies@example.org', name: 'Replies' }]);
    expect(m.messageId).toBe('CAF=abc123@mail.example.org');
    expect(m.inReplyTo).toBe('parent@example.org');
    expect(m.references).toEqual(['root@example.org', 'parent@example.org']);
    expect(m.date).toBe('2024-03-12T09:15:01.000Z');
    expect(m.text).toBe('Hello body\n');
  });

  it('returns selected raw headers by lower-case name, all values, decoded, in order', async () => {
    const m = await parseMail(raw, { headerNames: ['x-original-to', 'X-Custom', 'received', 'x-absent'], maxTextChars: 1000 });
    expect(m.headers).toEqual({
      'x-original-to': ['archive@Example.NET'],
      'x-custom': ['first ✓', 'second'],
      received: ['from a by b; Tue, 12 Mar 2024 10:15:01 +0100', 'from c by d; Tue, 12 Mar 2024 10:15:00 +0100'],
      'x-absent': [],
    });
  });

  it('tolerates a leading mbox From_ line and LF line endings', async () => {
    const lf = Buffer.from('From alice@example.org Tue Mar 12 10:15:01 2024\n' + BASE.join('\n') + '\n\nbody\n');
    const m = await parseMail(lf, opts);
    expect(m.status).toBe('ok');
    expect(m.subject).toBe('test');
    expect(m.from).toEqual([{ address: 'alice@example.org', name: 'Alice' }]);
    expect(m.defects).toEqual([]);
  });

  it('takes Message-IDs without brackets, also bare or folded ones', () => {
    expect(firstMessageId('<a@b>')).toBe('a@b');
    expect(firstMessageId('  a@b  ')).toBe('a@b');
    expect(firstMessageId('<a@b> (comment) <c@d>')).toBe('a@b');
    expect(firstMessageId('<abc\r\n def@x>')).toBe('abcdef@x');
    expect(firstMessageId('')).toBeNull();
    expect(firstMessageId('<>')).toBeNull();
    expect(allMessageIds('<a@b> <c@d>\r\n\t<e@f>')).toEqual(['a@b', 'c@d', 'e@f']);
    expect(allMessageIds('<a@b><c@d>')).toEqual(['a@b', 'c@d']);
    expect(allMessageIds('a@b c@d')).toEqual(['a@b', 'c@d']);
  });
});

describe('parseMail: dates', () => {
  it.each([
    ['Tue, 12 Mar 2024 10:15:01 +0100', '2024-03-12T09:15:01.000Z'],
    ['Tue, 12 Mar 2024 10:15:01 +0100 (CET)', '2024-03-12T09:15:01.000Z'],
    ['12 Mar 2024 10:15 -0330', '2024-03-12T13:45:00.000Z'],
    ['Fri, 4 May 2001 14:05:44 EDT', '2001-05-04T18:05:44.000Z'],
    ['Fri, 20 Apr 01 19:35:02 GMT', '2001-04-20T19:35:02.000Z'],
    ['Mon, 13 Dec 99 10:00:00 +0000', '1999-12-13T10:00:00.000Z'],
    ['Tuesday, 12-Mar-2024 10:15:01 UT', '2024-03-12T10:15:01.000Z'],
    ['2024-03-12T10:15:01Z', '2024-03-12T10:15:01.000Z'],
  ])('%s -> %s', (value, iso) => {
    expect(parseDateHeader(value)).toBe(iso);
  });

  it.each(['yesterday', '1', '', 'Fri, 31 Feb 2020 10:00:00 +0000', 'Mon, 1 Jan 2001 25:00:00 +0000', 'Mon, 1 Foo 2001 10:00:00 +0000'])(
    'rejects %j',
    (value) => {
      expect(parseDateHeader(value)).toBeNull();
    },
  );

  it('flags no-date and bad-date', async () => {
    const noDate = await parseMail(msg(BASE.filter((h) => !h.startsWith('Date')), 'x'), opts);
    expect(noDate.date).toBeNull();
    expect(noDate.defects).toEqual(['no-date']);
    const bad = await parseMail(msg([...BASE.filter((h) => !h.startsWith('Date')), 'Date: sometime last week'], 'x'), opts);
    expect(bad.date).toBeNull();
    expect(bad.defects).toEqual(['bad-date']);
  });
});

describe('parseMail: charsets', () => {
  it('decodes a koi8-r encoded-word subject and a koi8-r 8bit body', async () => {
    const raw = bytes(
      'From: a@example.org\nDate: Tue, 12 Mar 2024 10:15:01 +0100\nMessage-ID: <k@x>\n',
      'Subject: =?koi8-r?B?8NLJ18XULCDNydI=?=\n',
      'MIME-Version: 1.0\nContent-Type: text/plain; charset="koi8-r"\nContent-Transfer-Encoding: 8bit\n\n',
      { hex: 'f3dfc5dbd820d6c520c5dda320dcd4c9c820cdd1c7cbc9c820c6d2c1cec3d5dad3cbc9c820c2d5cccfcb' },
      '\n',
    );
    const m = await parseMail(raw, opts);
    expect(m.subject).toBe('Привет, мир');
    expect(m.text.trim()).toBe('Съешь же ещё этих мягких французских булок');
  });

  it('decodes an iso-2022-jp body and subject', async () => {
    const raw = bytes(
      'From: a@example.org\nSubject: =?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=\n',
      'Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n',
      { hex: Buffer.from('\x1b$B$3$s$K$A$O!"@$3&\x1b(B', 'latin1').toString('hex') },
      '\n',
    );
    const m = await parseMail(raw, opts);
    expect(m.subject).toBe('日本語の件名');
    expect(m.text.trim()).toBe('こんにちは、世界');
  });

  it.each([
    ['iso-8859-2', '5a61bff3b3e62067eab66cb1206a61bcf1', 'Zażółć gęślą jaźń'],
    ['ISO-8859-15', '507269783a20313020a420bd75767265', 'Prix: 10 € œuvre'],
    ['windows-1251', 'cff0e8e2e5f220e8e72057696e646f7773', 'Привет из Windows'],
    ['windows-1252', '93536d617274942071756f7465732096208035', '“Smart” quotes – €5'],
  ])('decodes an 8bit %s body', async (charset, hex, expected) => {
    const raw = bytes(`From: a@example.org\nSubject: s\nContent-Type: text/plain; charset=${charset}\nContent-Transfer-Encoding: 8bit\n\n`, { hex }, '\n');
    const m = await parseMail(raw, opts);
    expect(m.text.trim()).toBe(expected);
  });

  it('decodes quoted-printable iso-8859-1 and base64 windows-1251 bodies', async () => {
    const qp = await parseMail(
      msg(['From: a@example.org', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable'], 'Caf=E9 cr=E8me br=FBl=E9e=\n, fin\n'),
      opts,
    );
    expect(qp.text.trim()).toBe('Café crème brûlée, fin');
    const b64 = await parseMail(
      msg(['From: a@example.org', 'Content-Type: text/plain; charset=windows-1251', 'Content-Transfer-Encoding: base64'], Buffer.from('cff0e8e2e5f220e8e72057696e646f7773', 'hex').toString('base64') + '\n'),
      opts,
    );
    expect(b64.text.trim()).toBe('Привет из Windows');
  });

  it('decodes RFC 2047 words: Q underscores, joined words, mixed charsets, a split multibyte char', async () => {
    // whitespace between adjacent encoded words is not part of the text (RFC 2047 section 6.2)
    const m = await parseMail(
      msg(['From: a@example.org', 'Subject: =?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?= =?iso-8859-1?q?=E0_la?= =?windows-1252?Q?=80?= =?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC?= end'], 'x'),
      opts,
    );
    expect(m.subject).toBe('ééà la€€ end');
  });

  it('decodes RFC 2231 and encoded-word attachment file names', async () => {
    const raw = msg(
      ['From: a@example.org', 'Content-Type: multipart/mixed; boundary="XX"'],
      [
        '--XX',
        'Content-Type: text/plain',
        '',
        'see files',
        '--XX',
        'Content-Type: application/octet-stream',
        "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt",
        '',
        'abc',
        '--XX',
        'Content-Type: application/pdf; name="=?UTF-8?B?0YTQsNC50Lsu?= =?UTF-8?B?cGRm?="',
        'Content-Disposition: attachment',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4').toString('base64'),
        '--XX--',
        '',
      ].join('\n'),
    );
    const m = await parseMail(raw, opts);
    expect(m.attachments.map((a) => a.filename)).toEqual(['naïve résumé.txt', 'файл.pdf']);
  });
});

describe('parseMail: text', () => {
  it('converts HTML-only mail to text (root text/html)', async () => {
    const m = await parseMail(
      msg(
        ['From: a@example.org', 'Content-Type: text/html; charset=utf-8'],
        '<html><head><style>p{color:red}</style><title>T</title></head><body><p>Hello <b>there</b> &amp; caf&eacute;</p><script>var x=1;</script><p>Second</p></body></html>\n',
      ),
      opts,
    );
    expect(m.text).toContain('Hello there & café');
    expect(m.text).toContain('Second');
    expect(m.text).not.toMatch(/<|color:red|var x/);
  });

  it('converts HTML when it is the only text part of a multipart/mixed (mailparser gives no text there)', async () => {
    const m = await parseMail(
      msg(
        ['From: a@example.org', 'Content-Type: multipart/mixed; boundary=b'],
        '--b\nContent-Type: text/html\n\n<div>Only <i>HTML</i> here&nbsp;!</div>\n--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=a.png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--b--\n',
      ),
      opts,
    );
    expect(m.text).toMatch(/Only HTML here\s!/);
    expect(m.attachments).toHaveLength(1);
  });

  it('prefers text/plain in multipart/alternative and uses HTML when the plain part is empty', async () => {
    const alt = (plain: string): Buffer =>
      msg(
        ['From: a@example.org', 'Content-Type: multipart/alternative; boundary=b'],
        `--b\nContent-Type: text/plain\n\n${plain}\n--b\nContent-Type: text/html\n\n<p>rich <b>version</b></p>\n--b--\n`,
      );
    expect((await parseMail(alt('plain version'), opts)).text.trim()).toBe('plain version');
    expect((await parseMail(alt(''), opts)).text.trim()).toBe('rich version');
  });

  it('caps text to maxTextChars without splitting a surrogate pair', async () => {
    const utf8 = Buffer.from([...BASE, 'Content-Type: text/plain; charset=utf-8'].join('\r\n') + '\r\n\r\n' + 'x'.repeat(9) + '😀' + 'y'.repeat(100), 'utf8');
    const m = await parseMail(utf8, { headerNames: [], maxTextChars: 10 });
    expect(m.text).toBe('x'.repeat(9));
    const m2 = await parseMail(msg(BASE, 'abcdefghijklmnop'), { headerNames: [], maxTextChars: 5 });
    expect(m2.text).toBe('abcde');
  });

  it('turns huge HTML into text by stripping tags, quickly, also when tags are unclosed', async () => {
    const big = '<html><body>' + '<div class="row"><span>cell &amp; value</span></div>\n'.repeat(20_000) + '</body></html>';
    expect(big.length).toBeGreaterThan(512 * 1024);
    const m = await parseMail(msg(['From: a@example.org', 'Content-Type: text/html'], big), { headerNames: [], maxTextChars: 100 });
    expect(m.text.startsWith('cell & value\n')).toBe(true);
    expect(m.text).not.toMatch(/[<>]|&amp;/);
    expect(m.text.length).toBe(100);
    expect(m.defects).toEqual(['no-date', 'no-message-id']);
    const t = performance.now();
    stripHtml('<a'.repeat(200_000) + '<script' + ' x'.repeat(100_000) + '<!--' + '<p'.repeat(100_000));
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('strips HTML carefully when html-to-text is not used', () => {
    expect(stripHtml('<p>a &lt;b&gt; &#233;&#x20AC;</p><!-- hidden --><style>x{}</style><br>c<td>d</td>')).toBe('a <b> é€\n\nc d');
  });
});

describe('parseMail: attachments', () => {
  const pdf = Buffer.from('%PDF-1.4 pretend binary \x00\x01\x02\xff', 'latin1');
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const raw = msg(
    ['From: a@example.org', 'Subject: att', 'Content-Type: multipart/mixed; boundary="outer"'],
    [
      '--outer',
      'Content-Type: multipart/related; boundary="rel"',
      '',
      '--rel',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>see <img src="cid:logo@x"></p>',
      '--rel',
      'Content-Type: image/png',
      'Content-ID: <logo@x>',
      'Content-Transfer-Encoding: base64',
      '',
      png.toString('base64'),
      '--rel--',
      '--outer',
      'Content-Type: application/pdf; name="report.pdf"',
      'Content-Disposition: attachment; filename="report.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      pdf.toString('base64').replace(/(.{20})/g, '$1\n'),
      '--outer',
      'Content-Type: application/x-thing',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('no name').toString('base64'),
      '--outer',
      'Content-Type: image/gif',
      'Content-Disposition: inline',
      '',
      'GIF89a',
      '--outer--',
      '',
    ].join('\n'),
  );

  it('reports name, type, decoded size, sha256, content id and inline-ness, without content', async () => {
    const m = await parseMail(raw, opts);
    expectSane(m);
    expect(m.defects).toEqual(['no-date', 'no-message-id']);
    expect(m.attachments).toEqual([
      { filename: null, contentType: 'image/png', size: png.length, sha256: sha(png), contentId: 'logo@x', inline: true },
      { filename: 'report.pdf', contentType: 'application/pdf', size: pdf.length, sha256: sha(pdf), contentId: null, inline: false },
      { filename: null, contentType: 'application/x-thing', size: 7, sha256: sha('no name'), contentId: null, inline: false },
      { filename: null, contentType: 'image/gif', size: 6, sha256: sha('GIF89a'), contentId: null, inline: true },
    ]);
    expect(m.text).toContain('see');
  });
});

describe('parseMail: bodySha256 on the raw bytes', () => {
  it('hashes the bytes after the first CRLFCRLF', async () => {
    const raw = msg(BASE, 'line one\nline two\n');
    const m = await parseMail(raw, opts);
    expect(m.bodySha256).toBe(sha('line one\r\nline two\r\n'));
    expect(bodySha256(raw)).toBe(m.bodySha256);
  });

  it('hashes the bytes after the first LFLF, so LF and CRLF copies differ (raw, not parsed)', async () => {
    const lf = Buffer.from(BASE.join('\n') + '\n\nline one\nline two\n');
    const m = await parseMail(lf, opts);
    expect(m.bodySha256).toBe(sha('line one\nline two\n'));
    expect(m.bodySha256).not.toBe((await parseMail(msg(BASE, 'line one\nline two\n'), opts)).bodySha256);
  });

  it('is the same for the same body under different headers (dedup key)', async () => {
    const a = await parseMail(msg([...BASE, 'Received: by relay1'], 'same body\n'), opts);
    const b = await parseMail(msg(['Received: by relay2', ...BASE], 'same body\n'), opts);
    expect(a.bodySha256).toBe(b.bodySha256);
  });

  it('hashes the raw transfer encoding, not the decoded text', async () => {
    const raw = msg([...BASE, 'Content-Transfer-Encoding: base64'], Buffer.from('hello').toString('base64') + '\n');
    const m = await parseMail(raw, opts);
    expect(m.text.trim()).toBe('hello');
    expect(m.bodySha256).toBe(sha(Buffer.from('hello').toString('base64') + '\r\n'));
  });

  it('is the hash of empty input when there is no empty line', async () => {
    const m = await parseMail(Buffer.from('Subject: headers only\r\nFrom: a@example.org\r\n'), opts);
    expect(m.bodySha256).toBe(sha(''));
    expect(m.status).toBe('ok');
    expect(m.subject).toBe('headers only');
  });
});

describe('parseMail: defects and fallback', () => {
  it('reports no-from, no-date and no-message-id', async () => {
    const m = await parseMail(msg(['Subject: bare'], 'x'), opts);
    expect(m.status).toBe('ok');
    expect(m.defects).toEqual(['no-from', 'no-date', 'no-message-id']);
    const emptyFrom = await parseMail(msg(['From: MAILER DAEMON <>', 'Subject: s', 'Date: Tue, 12 Mar 2024 10:15:01 +0100', 'Message-ID: <a@b>'], 'x'), opts);
    expect(emptyFrom.from).toEqual([]);
    expect(emptyFrom.defects).toEqual(['no-from']);
  });

  it('reports missing-final-boundary for the outer and for a nested multipart', async () => {
    const outer = await parseMail(msg([...BASE, 'Content-Type: multipart/mixed; boundary="b1"'], '--b1\nContent-Type: text/plain\n\nhello\n--b1\n'), opts);
    expect(outer.status).toBe('ok');
    expect(outer.defects).toEqual(['missing-final-boundary']);
    expect(outer.text.trim()).toBe('hello');
    const nested = await parseMail(
      msg(
        [...BASE, 'Content-Type: multipart/mixed; boundary="b1"'],
        '--b1\nContent-Type: multipart/alternative; boundary="b2"\n\n--b2\nContent-Type: text/plain\n\nhi\n--b1--\n',
      ),
      opts,
    );
    expect(nested.defects).toEqual(['missing-final-boundary']);
    const fine = await parseMail(msg([...BASE, 'Content-Type: multipart/mixed; boundary="b1"'], 'preamble\n--b1\nContent-Type: text/plain\n\nhello\n--b1--\nepilogue\n'), opts);
    expect(fine.defects).toEqual([]);
    // the delimiter must start a line: "x--b1--" inside text does not close the multipart
    const inText = await parseMail(msg([...BASE, 'Content-Type: multipart/mixed; boundary="b1"'], '--b1\nContent-Type: text/plain\n\nsee x--b1-- here\n'), opts);
    expect(inText.defects).toEqual(['missing-final-boundary']);
  });

  it('reports missing-boundary for a multipart without a boundary parameter', async () => {
    const m = await parseMail(msg([...BASE, 'Content-Type: multipart/alternative;'], 'Blah blah\n'), opts);
    expect(m.defects).toContain('missing-boundary');
  });

  it('falls back with no-header-block for input that does not start with a header', async () => {
    const m = await parseMail(Buffer.from('just some text\nwithout headers\n'), opts);
    expectSane(m);
    expect(m.status).toBe('partial');
    expect(m.defects).toEqual(['no-header-block', 'no-from', 'no-date', 'no-message-id']);
    expect(m.text).toBe('just some text\nwithout headers\n');
    const empty = await parseMail(Buffer.alloc(0), opts);
    expectSane(empty);
    expect(empty.status).toBe('partial');
    expect(empty.defects[0]).toBe('no-header-block');
    expect(empty.bodySha256).toBe(sha(''));
  });

  it('falls back with parse-error when mailparser fails (too many MIME parts), keeping the headers', async () => {
    let parts = '';
    for (let i = 0; i < 1005; i++) parts += `--b\nContent-Type: text/plain\n\npart ${i}\n`;
    const raw = msg(
      [
        'From: =?ISO-8859-1?Q?Andr=E9?= <Andre@EXAMPLE.com>',
        'To: x@example.net, Grp: y@example.net;',
        'Subject: =?koi8-r?B?8NLJ18XULCDNydI=?=',
        'Date: Tue, 12 Mar 2024 10:15:01 +0100',
        'Message-ID: <fb@example.com>',
        'References: <r1@x> <r2@x>',
        'X-Original-To: arch@example.net',
        'Content-Type: multipart/mixed; boundary=b',
      ],
      parts + '--b--\n',
    );
    const m = await parseMail(raw, { headerNames: ['x-original-to'], maxTextChars: 30 });
    expectSane(m);
    expect(m.status).toBe('partial');
    expect(m.defects).toEqual(['parse-error']);
    expect(m.subject).toBe('Привет, мир');
    expect(m.from).toEqual([{ address: 'Andre@example.com', name: 'André' }]);
    expect(m.to.map((a) => a.address)).toEqual(['x@example.net', 'y@example.net']);
    expect(m.messageId).toBe('fb@example.com');
    expect(m.references).toEqual(['r1@x', 'r2@x']);
    expect(m.date).toBe('2024-03-12T09:15:01.000Z');
    expect(m.headers).toEqual({ 'x-original-to': ['arch@example.net'] });
    expect(m.text).toBe('--b\r\nContent-Type: text/plain\r\n\r\n'.slice(0, 30));
    expect(m.bodySha256).toBe(bodySha256(raw));
    expect(m.attachments).toEqual([]);
  });

  it('fallbackParse decodes the body as UTF-8 with replacement and never throws', () => {
    const raw = Buffer.concat([Buffer.from('Subject: x\r\nFrom: a@b.example\r\n\r\nok \xff\xfe bytes', 'latin1')]);
    const m = fallbackParse(raw, opts, ['parse-timeout']);
    expect(m.status).toBe('partial');
    expect(m.defects).toEqual(['parse-timeout', 'no-date', 'no-message-id']);
    expect(m.text).toBe('ok \ufffd\ufffd bytes');
    expect(() => fallbackParse(Buffer.from([0, 0xff, 0x0a, 0x3a, 0x0a, 0x0a]), opts, ['parse-error'])).not.toThrow();
  });

  it('never throws on arbitrary bytes or mangled messages', async () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const template = msg(
      [...BASE, 'Content-Type: multipart/mixed; boundary="zz"', 'Subject: =?UTF-8?B?w6k=?='],
      '--zz\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n\nab=E9=\n--zz\nContent-Type: application/octet-stream; name*=UTF-8\'\'%C3%A9.bin\nContent-Transfer-Encoding: base64\n\nAAEC/w==\n--zz--\n',
    );
    const inputs: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const len = Math.floor(rand() * 400);
      inputs.push(Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256))));
    }
    for (let i = 0; i < 120; i++) {
      const b = Buffer.from(template);
      const edits = 1 + Math.floor(rand() * 8);
      for (let e = 0; e < edits; e++) b[Math.floor(rand() * b.length)] = [0x0a, 0x0d, 0x3a, 0x2d, 0x3d, 0x3f, 0x00, 0xff, 0x20][Math.floor(rand() * 9)] as number;
      inputs.push(b.subarray(0, Math.floor(rand() * b.length) + 1));
    }
    for (const input of inputs) {
      const m = await parseMail(input, opts);
      expectSane(m);
      if (m.status === 'partial') expect(m.defects.some((d) => d === 'parse-error' || d === 'no-header-block')).toBe(true);
    }
  });
});
