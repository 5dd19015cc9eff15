import { describe, it, expect } from 'vitest';
import {
  addressKey,
  createArchiveAddressMatcher,
  decodeXtext,
  encodeJournalAddress,
  formatLocalPart,
  parseOrcpt,
  splitAddress,
} from '../../src/journal/archive-address.js';

describe('createArchiveAddressMatcher: configured entries', () => {
  it('accepts an exact configured address as plain, case-insensitively', () => {
    const m = createArchiveAddressMatcher(['archive@localhost']);
    expect(m.match('archive@localhost')).toEqual({ kind: 'plain' });
    expect(m.match('ARCHIVE@LocalHost')).toEqual({ kind: 'plain' });
    expect(m.match('<archive@localhost>')).toEqual({ kind: 'plain' });
    expect(m.match('"archive"@localhost')).toEqual({ kind: 'plain' });
    expect(m.match('archive@localhost.')).toEqual({ kind: 'plain' });
  });

  it('rejects other addresses at the domain of an address entry', () => {
    const m = createArchiveAddressMatcher(['archive@localhost']);
    expect(m.match('root@localhost')).toBeNull();
    expect(m.match('archive+x@localhost')).toBeNull();
    expect(m.match('journal@localhost')).toBeNull();
    expect(m.match('journal+other.bob=example.com@localhost')).toBeNull();
  });

  it('rejects foreign domains and garbage', () => {
    const m = createArchiveAddressMatcher(['archive@localhost', '@archive.example']);
    expect(m.match('archive@example.com')).toBeNull();
    expect(m.match('journal+rcpt.bob=example.com@example.com')).toBeNull();
    expect(m.match('journal+rcpt.bob=example.com@sub.archive.example')).toBeNull();
    expect(m.match('')).toBeNull();
    expect(m.match('archive')).toBeNull();
    expect(m.match('@archive.example')).toBeNull();
    expect(m.match('archive@')).toBeNull();
  });

  it('accepts any address at a configured @domain as plain', () => {
    const m = createArchiveAddressMatcher(['@Archive.Example']);
    expect(m.match('anything@archive.example')).toEqual({ kind: 'plain' });
    expect(m.match('X.Y+z@ARCHIVE.EXAMPLE')).toEqual({ kind: 'plain' });
    expect(m.match('journal@archive.example')).toEqual({ kind: 'plain' });
    // a journal+ prefix that is neither rcpt nor from is just another address at the domain
    expect(m.match('journal+other.bob=example.com@archive.example')).toEqual({ kind: 'plain' });
  });

  it('lists the configured domains, lower-cased, without duplicates', () => {
    const m = createArchiveAddressMatcher([
      ' archive@LocalHost ',
      '@Archive.Example',
      'other@archive.example',
      '',
    ]);
    expect(m.domains).toEqual(['localhost', 'archive.example']);
  });

  it('throws on entries that are neither an address nor @domain', () => {
    expect(() => createArchiveAddressMatcher(['archive.example'])).toThrow(/invalid archive address/);
    expect(() => createArchiveAddressMatcher(['@'])).toThrow();
    expect(() => createArchiveAddressMatcher(['a@'])).toThrow();
  });

  it('accepts nothing when configured with nothing', () => {
    const m = createArchiveAddressMatcher([]);
    expect(m.domains).toEqual([]);
    expect(m.match('archive@localhost')).toBeNull();
  });
});

describe('createArchiveAddressMatcher: journal addresses', () => {
  const m = createArchiveAddressMatcher(['@archive.example']);

  it('decodes journal+rcpt and journal+from', () => {
    expect(m.match('journal+rcpt.bob=example.com@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'bob@example.com',
    });
    expect(m.match('journal+from.alice=example.org@archive.example')).toEqual({
      kind: 'from',
      original: 'alice@example.org',
    });
  });

  it('accepts journal addresses under the domain of a plain address entry', () => {
    const only = createArchiveAddressMatcher(['archive@localhost']);
    expect(only.match('journal+rcpt.bob=example.com@localhost')).toEqual({
      kind: 'rcpt',
      original: 'bob@example.com',
    });
    expect(only.match('journal+from.bob=example.com@LOCALHOST')).toEqual({
      kind: 'from',
      original: 'bob@example.com',
    });
  });

  it('decodes at the LAST "=": the original local part may hold "=" and "+"', () => {
    expect(m.match('journal+rcpt.a=b+c=example.com@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'a=b+c@example.com',
    });
    expect(m.match('journal+rcpt.weird=x+y=Example.COM@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'weird=x+y@example.com',
    });
    expect(m.match('journal+rcpt.==example.com@archive.example')).toEqual({
      kind: 'rcpt',
      original: '=@example.com',
    });
    expect(m.match('journal+rcpt.bob+tag=example.com@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'bob+tag@example.com',
    });
  });

  it('matches the prefix case-insensitively, keeps the local case, lower-cases the domain', () => {
    expect(m.match('JOURNAL+RCPT.Bob.Smith=Example.COM@Archive.Example')).toEqual({
      kind: 'rcpt',
      original: 'Bob.Smith@example.com',
    });
    expect(m.match('Journal+From.MiXeD=EXAMPLE.org@archive.example')).toEqual({
      kind: 'from',
      original: 'MiXeD@example.org',
    });
  });

  it('never rejects for length (local parts far beyond 64 octets)', () => {
    const local = 'x'.repeat(300);
    const domain = `${'sub.'.repeat(40)}example.com`;
    const addr = `journal+rcpt.${local}=${domain}@archive.example`;
    expect(addr.length).toBeGreaterThan(500);
    expect(m.match(addr)).toEqual({ kind: 'rcpt', original: `${local}@${domain}` });
  });

  it('handles quoted local parts: the internal form (spaces in the original local part)', () => {
    expect(m.match('"journal+rcpt.x y=example.com"@archive.example')).toEqual({
      kind: 'rcpt',
      original: '"x y"@example.com',
    });
    expect(m.match('<"journal+from.x y=example.com"@archive.example>')).toEqual({
      kind: 'from',
      original: '"x y"@example.com',
    });
  });

  it('handles what Postfix 3.7 really sends for "john doe"@example.com', () => {
    // Observed on the wire: <"journal+rcpt.\"john doe\"=example.com"@archive.example>
    expect(m.match('"journal+rcpt.\\"john doe\\"=example.com"@archive.example')).toEqual({
      kind: 'rcpt',
      original: '"john doe"@example.com',
    });
  });

  it('handles a quoted original local part holding "@" and "="', () => {
    const enc = encodeJournalAddress('rcpt', '"a@b=c"@example.com', 'archive.example');
    expect(enc).toBe('"journal+rcpt.\\"a@b=c\\"=example.com"@archive.example');
    expect(m.match(enc)).toEqual({ kind: 'rcpt', original: '"a@b=c"@example.com' });
  });

  it('treats malformed encodings as not acceptable', () => {
    expect(m.match('journal+rcpt.noequals@archive.example')).toBeNull();
    expect(m.match('journal+rcpt.=example.com@archive.example')).toBeNull();
    expect(m.match('journal+rcpt.bob=@archive.example')).toBeNull();
    expect(m.match('journal+rcpt.@archive.example')).toBeNull();
    expect(m.match('journal+from.bob@archive.example')).toBeNull();
    expect(m.match('"journal+rcpt.bob=exa mple.com"@archive.example')).toBeNull();
    expect(m.match('"journal+rcpt.unterminated=example.com@archive.example')).toBeNull();
    expect(m.match('"journal+rcpt.a=b"x@archive.example')).toBeNull();
  });

  it('prefers an exact configured address over decoding', () => {
    const mm = createArchiveAddressMatcher(['journal+rcpt.bob=example.com@archive.example']);
    expect(mm.match('journal+rcpt.bob=example.com@archive.example')).toEqual({ kind: 'plain' });
    expect(mm.match('journal+rcpt.eve=example.com@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'eve@example.com',
    });
  });

  it('keeps UTF-8 local parts and domains', () => {
    expect(m.match('journal+rcpt.jürgen=bücher.example@archive.example')).toEqual({
      kind: 'rcpt',
      original: 'jürgen@bücher.example',
    });
  });
});

describe('decodeXtext', () => {
  it('decodes hex escapes', () => {
    expect(decodeXtext('user+2Bx@example.com')).toBe('user+x@example.com');
    expect(decodeXtext('a+3Db')).toBe('a=b');
    expect(decodeXtext('john+20doe')).toBe('john doe');
    expect(decodeXtext('plain@example.com')).toBe('plain@example.com');
    expect(decodeXtext('')).toBe('');
  });

  it('accepts lower-case hex and decodes multi-octet UTF-8', () => {
    expect(decodeXtext('a+2bb')).toBe('a+b');
    expect(decodeXtext('j+C3+BCrgen')).toBe('jürgen');
  });

  it('falls back to Latin-1 for octets that are not UTF-8', () => {
    expect(decodeXtext('+E9')).toBe('é');
  });

  it('throws on invalid xtext', () => {
    expect(() => decodeXtext('a+')).toThrow(/xtext/);
    expect(() => decodeXtext('a+2')).toThrow(/xtext/);
    expect(() => decodeXtext('a+ZZ')).toThrow(/xtext/);
    expect(() => decodeXtext('user+x@example.com')).toThrow(/xtext/);
    expect(() => decodeXtext('a=b')).toThrow(/xtext/);
    expect(() => decodeXtext('a b')).toThrow(/xtext/);
    expect(() => decodeXtext('jürgen')).toThrow(/xtext/);
  });
});

describe('parseOrcpt', () => {
  it('decodes rfc822 ORCPT values', () => {
    expect(parseOrcpt('rfc822;user+2Bx@example.com')).toBe('user+x@example.com');
    expect(parseOrcpt('RFC822;bob@example.com')).toBe('bob@example.com');
    expect(parseOrcpt(' rfc822; <bob@example.com> ')).toBe('bob@example.com');
  });

  it('decodes what Postfix sends for a journal recipient', () => {
    const orcpt = parseOrcpt('rfc822;journal+2Brcpt.weird+3Dx+2By+3DExample.COM@archive.example');
    expect(orcpt).toBe('journal+rcpt.weird=x+y=Example.COM@archive.example');
    const m = createArchiveAddressMatcher(['@archive.example']);
    expect(m.match(orcpt!)).toEqual({ kind: 'rcpt', original: 'weird=x+y@example.com' });
    expect(parseOrcpt('rfc822;"journal+2Brcpt.\\"john+20doe\\"+3Dexample.com"@archive.example')).toBe(
      '"journal+rcpt.\\"john doe\\"=example.com"@archive.example',
    );
  });

  it('takes a value that is not valid xtext as already decoded (smtp-server decodes it)', () => {
    expect(parseOrcpt('rfc822;user+x@example.com')).toBe('user+x@example.com');
    expect(parseOrcpt('rfc822;journal+rcpt.bob=example.com@archive.example')).toBe(
      'journal+rcpt.bob=example.com@archive.example',
    );
  });

  it('decodes the utf-8 address type (RFC 6533)', () => {
    expect(parseOrcpt('utf-8;j\\x{FC}rgen@example.com')).toBe('jürgen@example.com');
    expect(parseOrcpt('utf-8;jürgen@example.com')).toBe('jürgen@example.com');
  });

  it('returns null for other address types and empty or malformed values', () => {
    expect(parseOrcpt('x400;/C=US/ADMD=x/')).toBeNull();
    expect(parseOrcpt('unknown;foo')).toBeNull();
    expect(parseOrcpt('rfc822;')).toBeNull();
    expect(parseOrcpt('bob@example.com')).toBeNull();
    expect(parseOrcpt(';bob@example.com')).toBeNull();
    expect(parseOrcpt('')).toBeNull();
  });
});

describe('encodeJournalAddress', () => {
  it('is the inverse of decoding', () => {
    const m = createArchiveAddressMatcher(['archive@archive.example']);
    const cases = [
      'bob@example.com',
      'Bob.Smith+tag@example.com',
      'a=b+c@example.com',
      '"x y"@example.com',
      '"john \\"JJ\\" doe"@example.com',
      `${'y'.repeat(200)}@example.com`,
    ];
    for (const original of cases) {
      for (const kind of ['rcpt', 'from'] as const) {
        const enc = encodeJournalAddress(kind, original, 'archive.example');
        expect(m.match(enc)).toEqual({ kind, original });
      }
    }
  });

  it('produces the wire form Postfix uses', () => {
    expect(encodeJournalAddress('rcpt', 'alice@example.com', 'archive.example')).toBe(
      'journal+rcpt.alice=example.com@archive.example',
    );
    expect(encodeJournalAddress('from', '<Alice@Example.COM>', 'Archive.Example')).toBe(
      'journal+from.Alice=Example.COM@archive.example',
    );
    expect(encodeJournalAddress('rcpt', '"john doe"@example.com', 'archive.example')).toBe(
      '"journal+rcpt.\\"john doe\\"=example.com"@archive.example',
    );
  });

  it('throws on something that is not local@domain', () => {
    expect(() => encodeJournalAddress('rcpt', 'bob', 'archive.example')).toThrow();
    expect(() => encodeJournalAddress('rcpt', '@example.com', 'archive.example')).toThrow();
    expect(() => encodeJournalAddress('rcpt', 'bob@', 'archive.example')).toThrow();
    expect(() => encodeJournalAddress('rcpt', 'bob@example.com', '')).toThrow();
  });
});

describe('address helpers', () => {
  it('splitAddress unquotes and splits at the last @', () => {
    expect(splitAddress('a@b@c.example')).toEqual({ local: 'a@b', domain: 'c.example' });
    expect(splitAddress('"x \\"y\\""@d.example')).toEqual({ local: 'x "y"', domain: 'd.example' });
    expect(splitAddress('nodomain')).toBeNull();
  });

  it('formatLocalPart quotes only when needed', () => {
    expect(formatLocalPart('bob.smith+tag')).toBe('bob.smith+tag');
    expect(formatLocalPart('x y')).toBe('"x y"');
    expect(formatLocalPart('"already quoted"')).toBe('"already quoted"');
    expect(formatLocalPart('a"b')).toBe('"a\\"b"');
  });

  it('addressKey compares case-insensitively and ignores needless quoting', () => {
    expect(addressKey('"Bob"@Example.COM')).toBe(addressKey('bob@example.com'));
    expect(addressKey('<BOB@example.com>')).toBe('bob@example.com');
    expect(addressKey('"x y"@example.com')).toBe('x y@example.com');
  });
});
