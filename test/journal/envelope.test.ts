import { describe, it, expect } from 'vitest';
import type { Address } from '../../src/ingest/types.js';
import { createArchiveAddressMatcher, encodeJournalAddress } from '../../src/journal/archive-address.js';
import {
  recoverEnvelope,
  splitAddressList,
  type EnvelopeInput,
  type Participant,
} from '../../src/journal/envelope.js';

const matcher = createArchiveAddressMatcher(['archive@localhost', '@archive.example']);

const a = (address: string, name = ''): Address => ({ address, name });
const rcpt = (original: string, domain = 'archive.example') => ({
  address: encodeJournalAddress('rcpt', original, domain),
});
const from = (original: string, domain = 'archive.example') => ({
  address: encodeJournalAddress('from', original, domain),
});

type InputSpec = Partial<Omit<EnvelopeInput, 'headers'>> & { headers?: Partial<EnvelopeInput['headers']> };

function input(partial: InputSpec): EnvelopeInput {
  return {
    mailFrom: partial.mailFrom ?? 'alice@example.com',
    rcpts: partial.rcpts ?? [],
    headers: { from: [], sender: [], to: [], cc: [], bcc: [], ...partial.headers },
    ...(partial.trustedHeaderValues ? { trustedHeaderValues: partial.trustedHeaderValues } : {}),
  };
}

/** Sorted "kind address" strings, for order-independent comparisons. */
const kinds = (ps: Participant[]) => ps.map((p) => `${p.kind} ${p.address}`).sort();

describe('recoverEnvelope: always_bcc', () => {
  it('takes recipients from the headers only', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [{ address: 'archive@localhost' }],
        headers: {
          from: [a('alice@example.com', 'Alice')],
          to: [a('bob@example.com', 'Bob')],
          cc: [a('carol@example.com', 'Carol')],
        },
      }),
      matcher,
    );
    expect(r.mode).toBe('always_bcc');
    expect(r.envelopeSender).toBe('alice@example.com');
    expect(r.recipients).toEqual([
      { address: 'bob@example.com', name: 'Bob', kind: 'to' },
      { address: 'carol@example.com', name: 'Carol', kind: 'cc' },
    ]);
  });

  it('keeps a Bcc header when the message still has one', () => {
    const r = recoverEnvelope(
      input({ rcpts: [{ address: 'archive@localhost' }], headers: { bcc: [a('dave@example.com', 'Dave')] } }),
      matcher,
    );
    expect(r.recipients).toEqual([{ address: 'dave@example.com', name: 'Dave', kind: 'bcc' }]);
  });

  it('ignores the ORCPT of a plain archive RCPT', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [{ address: 'archive@localhost', orcpt: 'rfc822;someone+40else@example.com' }],
        headers: { to: [a('bob@example.com')] },
      }),
      matcher,
    );
    expect(r.mode).toBe('always_bcc');
    expect(kinds(r.recipients)).toEqual(['to bob@example.com']);
  });

  it('reports the null sender as null', () => {
    expect(recoverEnvelope(input({ mailFrom: '' }), matcher).envelopeSender).toBeNull();
    expect(recoverEnvelope(input({ mailFrom: '<>' }), matcher).envelopeSender).toBeNull();
    const nul: EnvelopeInput = { ...input({}), mailFrom: null };
    expect(recoverEnvelope(nul, matcher).envelopeSender).toBeNull();
  });

  it('skips empty header entries (undisclosed-recipients:;)', () => {
    const r = recoverEnvelope(input({ headers: { to: [a(''), a('  ')], cc: [a('bob@example.com')] } }), matcher);
    expect(kinds(r.recipients)).toEqual(['cc bob@example.com']);
  });
});

describe('recoverEnvelope: envelope mode', () => {
  it('finds the Bcc recipient that no header names', () => {
    const r = recoverEnvelope(
      input({
        mailFrom: 'alice@example.com',
        rcpts: [
          from('alice@example.com'),
          rcpt('bob@example.com'),
          rcpt('carol@example.com'),
          rcpt('hidden@example.net'),
        ],
        headers: {
          from: [a('alice@example.com', 'Alice')],
          to: [a('bob@example.com', 'Bob')],
          cc: [a('carol@example.com', 'Carol')],
        },
      }),
      matcher,
    );
    expect(r.mode).toBe('envelope');
    expect(r.envelopeSender).toBe('alice@example.com');
    expect(r.recipients).toEqual([
      { address: 'bob@example.com', name: 'Bob', kind: 'to' },
      { address: 'carol@example.com', name: 'Carol', kind: 'cc' },
      { address: 'bob@example.com', name: 'Bob', kind: 'envelope' },
      { address: 'carol@example.com', name: 'Carol', kind: 'envelope' },
      { address: 'hidden@example.net', name: '', kind: 'envelope' },
      { address: 'hidden@example.net', name: '', kind: 'bcc' },
    ]);
  });

  it('uses the decoded journal+from as envelope sender over MAIL FROM', () => {
    const r = recoverEnvelope(
      input({ mailFrom: 'srs0=abc=example.org=alice@forwarder.example', rcpts: [from('Alice@Example.org')] }),
      matcher,
    );
    expect(r.envelopeSender).toBe('Alice@example.org');
  });

  it('counts a delivery holding only journal+from as envelope mode (a batch of a split message)', () => {
    const r = recoverEnvelope(
      input({ rcpts: [from('alice@example.com')], headers: { to: [a('bob@example.com')] } }),
      matcher,
    );
    expect(r.mode).toBe('envelope');
    expect(kinds(r.recipients)).toEqual(['to bob@example.com']);
  });

  it('compares case-insensitively, keeps the header spelling and name', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [rcpt('BOB@EXAMPLE.COM'), rcpt('Carol@Example.com')],
        headers: { to: [a('bob@example.com', 'Bob B.')], cc: [a('carol@example.com', '')] },
      }),
      matcher,
    );
    expect(r.recipients).toEqual([
      { address: 'bob@example.com', name: 'Bob B.', kind: 'to' },
      { address: 'carol@example.com', name: '', kind: 'cc' },
      { address: 'bob@example.com', name: 'Bob B.', kind: 'envelope' },
      { address: 'carol@example.com', name: '', kind: 'envelope' },
    ]);
  });

  it('keeps the local part of an envelope-only recipient as given, domain lower-cased', () => {
    const r = recoverEnvelope(input({ rcpts: [rcpt('Hidden.Person@Example.NET')] }), matcher);
    expect(r.recipients).toEqual([
      { address: 'Hidden.Person@example.net', name: '', kind: 'envelope' },
      { address: 'Hidden.Person@example.net', name: '', kind: 'bcc' },
    ]);
  });

  it('takes a name from From/Sender when the recipient is named nowhere else', () => {
    // the sender Bcc's themselves
    const r = recoverEnvelope(
      input({
        rcpts: [rcpt('alice@example.com'), rcpt('bob@example.com')],
        headers: { from: [a('Alice@Example.com', 'Alice A.')], to: [a('bob@example.com', 'Bob')] },
      }),
      matcher,
    );
    expect(r.recipients).toContainEqual({ address: 'Alice@Example.com', name: 'Alice A.', kind: 'bcc' });
    expect(r.recipients).toContainEqual({ address: 'Alice@Example.com', name: 'Alice A.', kind: 'envelope' });
  });

  it('a Bcc header entry does not hide an envelope recipient from being Bcc', () => {
    const r = recoverEnvelope(
      input({ rcpts: [rcpt('dave@example.com')], headers: { bcc: [a('dave@example.com', 'Dave')] } }),
      matcher,
    );
    expect(r.recipients).toEqual([
      { address: 'dave@example.com', name: 'Dave', kind: 'bcc' },
      { address: 'dave@example.com', name: 'Dave', kind: 'envelope' },
    ]);
  });

  it('deduplicates on (address, kind) but keeps different kinds', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [rcpt('bob@example.com'), rcpt('bob@example.com'), rcpt('BOB@example.com'), rcpt('x@example.com')],
        headers: {
          to: [a('bob@example.com', 'Bob'), a('Bob@Example.com', 'Bobby')],
          cc: [a('bob@example.com'), a('x@example.com')],
        },
      }),
      matcher,
    );
    expect(kinds(r.recipients)).toEqual([
      'cc bob@example.com',
      'cc x@example.com',
      'envelope bob@example.com',
      'envelope x@example.com',
      'to bob@example.com',
    ]);
    expect(r.recipients.find((p) => p.kind === 'to')!.name).toBe('Bob');
  });

  it('treats quoted and unquoted spellings of one address as the same', () => {
    const r = recoverEnvelope(
      input({
        // what Postfix 3.7 sends for "john doe"@example.com
        rcpts: [{ address: '"journal+rcpt.\\"john doe\\"=example.com"@archive.example' }],
        headers: { cc: [a('"john doe"@Example.com', 'John')] },
      }),
      matcher,
    );
    expect(r.recipients).toEqual([
      { address: '"john doe"@Example.com', name: 'John', kind: 'cc' },
      { address: '"john doe"@Example.com', name: 'John', kind: 'envelope' },
    ]);
  });

  it('decodes tricky local parts: "=", "+", long, quoted', () => {
    const long = `${'l'.repeat(150)}+tag=x`;
    const r = recoverEnvelope(
      input({
        rcpts: [
          { address: 'journal+rcpt.a=b+c=example.com@archive.example' },
          rcpt(`${long}@example.com`),
          { address: '"journal+rcpt.x y=example.com"@archive.example' },
        ],
      }),
      matcher,
    );
    expect(r.recipients.filter((p) => p.kind === 'envelope').map((p) => p.address)).toEqual([
      'a=b+c@example.com',
      `${long}@example.com`,
      '"x y"@example.com',
    ]);
  });

  it('treats ORCPT as corroboration only: the decoded address decides', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [
          {
            address: 'journal+rcpt.bob+tag=example.com@archive.example',
            orcpt: 'rfc822;journal+2Brcpt.bob+2Btag+3Dexample.com@archive.example',
          },
          // a disagreeing or broken ORCPT does not change anything, nor throw
          { address: 'journal+rcpt.carol=example.com@archive.example', orcpt: 'rfc822;mallory@evil.example' },
          { address: 'journal+rcpt.dave=example.com@archive.example', orcpt: 'rfc822;bad+Zxtext' },
          { address: 'journal+rcpt.erin=example.com@archive.example', orcpt: null },
        ],
      }),
      matcher,
    );
    expect(r.recipients.filter((p) => p.kind === 'envelope').map((p) => p.address)).toEqual([
      'bob+tag@example.com',
      'carol@example.com',
      'dave@example.com',
      'erin@example.com',
    ]);
    expect(r.recipients.some((p) => p.address.includes('mallory'))).toBe(false);
  });

  it('accepts journal addresses under the domain of an address entry and mixed plain RCPTs', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [{ address: 'archive@localhost' }, rcpt('bob@example.com', 'localhost')],
        headers: { to: [a('carol@example.com')] },
      }),
      matcher,
    );
    expect(r.mode).toBe('envelope');
    expect(kinds(r.recipients)).toEqual([
      'bcc bob@example.com',
      'envelope bob@example.com',
      'to carol@example.com',
    ]);
  });

  it('ignores RCPTs the matcher does not accept', () => {
    const r = recoverEnvelope(
      input({ rcpts: [{ address: 'stranger@example.com' }, { address: 'journal+rcpt.broken@archive.example' }] }),
      matcher,
    );
    expect(r.mode).toBe('always_bcc');
    expect(r.recipients).toEqual([]);
  });
});

describe('recoverEnvelope: split deliveries (recipient limit)', () => {
  it('each batch recovers its own RCPT set; the union is the full recipient list', () => {
    const headers = {
      from: [a('alice@example.com', 'Alice')],
      to: Array.from({ length: 60 }, (_, i) => a(`to${i}@example.com`)),
      cc: Array.from({ length: 40 }, (_, i) => a(`cc${i}@example.com`)),
    };
    const all = [
      from('alice@example.com'),
      ...headers.to.map((x) => rcpt(x.address)),
      ...headers.cc.map((x) => rcpt(x.address)),
      ...Array.from({ length: 20 }, (_, i) => rcpt(`bcc${i}@example.org`)),
    ];
    expect(all).toHaveLength(121);
    // default_destination_recipient_limit = 50 → 50 + 50 + 21
    const batches = [all.slice(0, 50), all.slice(50, 100), all.slice(100)];
    const results = batches.map((b) => recoverEnvelope(input({ mailFrom: 'alice@example.com', rcpts: b, headers }), matcher));
    for (const r of results) {
      expect(r.mode).toBe('envelope');
      expect(r.envelopeSender).toBe('alice@example.com');
      // every batch sees the same header participants
      expect(r.recipients.filter((p) => p.kind === 'to')).toHaveLength(60);
      expect(r.recipients.filter((p) => p.kind === 'cc')).toHaveLength(40);
    }
    const merged = new Set(results.flatMap((r) => r.recipients.map((p) => `${p.kind} ${p.address.toLowerCase()}`)));
    expect([...merged].filter((k) => k.startsWith('envelope '))).toHaveLength(120);
    expect([...merged].filter((k) => k.startsWith('bcc '))).toHaveLength(20);
    expect(merged.has('bcc bcc19@example.org')).toBe(true);
    expect(merged.has('bcc to0@example.com')).toBe(false);
  });
});

describe('recoverEnvelope: trusted envelope headers', () => {
  const headers = { to: [a('bob@example.com', 'Bob')] };

  it('without trusted values, recipients come from the headers only', () => {
    const r = recoverEnvelope(input({ rcpts: [{ address: 'archive@localhost' }], headers }), matcher);
    expect(r.mode).toBe('always_bcc');
    expect(kinds(r.recipients)).toEqual(['to bob@example.com']);
  });

  it('treats each address of a trusted value as an envelope recipient', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [{ address: 'archive@localhost' }],
        headers,
        trustedHeaderValues: ['bob@example.com, "Hidden, Person" <hidden@example.com>', '<other@example.org>'],
      }),
      matcher,
    );
    expect(r.mode).toBe('envelope');
    expect(r.recipients).toEqual([
      { address: 'bob@example.com', name: 'Bob', kind: 'to' },
      { address: 'bob@example.com', name: 'Bob', kind: 'envelope' },
      { address: 'hidden@example.com', name: '', kind: 'envelope' },
      { address: 'hidden@example.com', name: '', kind: 'bcc' },
      { address: 'other@example.org', name: '', kind: 'envelope' },
      { address: 'other@example.org', name: '', kind: 'bcc' },
    ]);
  });

  it('decodes a journal address in a trusted value and skips archive addresses', () => {
    const r = recoverEnvelope(
      input({
        rcpts: [{ address: 'archive@localhost' }],
        trustedHeaderValues: ['archive@localhost', 'journal+rcpt.eve=example.com@archive.example', 'not an address'],
      }),
      matcher,
    );
    expect(r.mode).toBe('envelope');
    expect(kinds(r.recipients)).toEqual(['bcc eve@example.com', 'envelope eve@example.com']);
  });

  it('does not switch mode when the trusted values name only the archive', () => {
    const r = recoverEnvelope(
      input({ rcpts: [{ address: 'archive@localhost' }], headers, trustedHeaderValues: ['archive@localhost', ''] }),
      matcher,
    );
    expect(r.mode).toBe('always_bcc');
    expect(kinds(r.recipients)).toEqual(['to bob@example.com']);
  });

  it('merges with journal recipients without duplicates', () => {
    const r = recoverEnvelope(
      input({ rcpts: [rcpt('bob@example.com')], headers, trustedHeaderValues: ['BOB@example.com'] }),
      matcher,
    );
    expect(kinds(r.recipients)).toEqual(['envelope bob@example.com', 'to bob@example.com']);
  });
});

describe('splitAddressList', () => {
  it('splits on commas outside quotes, brackets and comments', () => {
    expect(splitAddressList('a@x.example, "B, C" <b@y.example>, c@z.example (Carl, C.)')).toEqual([
      'a@x.example',
      'b@y.example',
      'c@z.example',
    ]);
    expect(splitAddressList('<a@x.example>')).toEqual(['a@x.example']);
    expect(splitAddressList('team: a@x.example, b@y.example;')).toEqual(['a@x.example', 'b@y.example']);
    expect(splitAddressList('"x y"@example.com')).toEqual(['"x y"@example.com']);
    expect(splitAddressList('')).toEqual([]);
    expect(splitAddressList('nobody')).toEqual([]);
  });
});
