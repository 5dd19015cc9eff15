import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import {
  compileQuery,
  idLowerBoundForTime,
  MAX_NESTING,
  MAX_QUERY_LENGTH,
  parseQuery,
  QueryError,
  type CompiledQuery,
} from '../../src/search/query.js';

const FTS_DDL = `CREATE VIRTUAL TABLE message_fts USING fts5(
  subject, sender, rcpt_to, rcpt_cc, rcpt_bcc, rcpt_env, body, attachments, flags,
  tokenize = 'unicode61 remove_diacritics 2'
)`;

const COLUMNS = ['subject', 'sender', 'rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'rcpt_env', 'body', 'attachments', 'flags'];

interface Row {
  day: string;
  messageId: string;
  subject?: string;
  sender?: string;
  rcpt_to?: string;
  rcpt_cc?: string;
  rcpt_bcc?: string;
  rcpt_env?: string;
  body?: string;
  attachments?: string;
  flags?: string;
}

const ROWS: Record<string, Row> = {
  report: {
    day: '2024-02-15',
    messageId: 'report-1@example.com',
    subject: 'Quarterly report',
    sender: 'Alice Smith alice@example.com',
    rcpt_to: 'Bob bob@example.org',
    rcpt_env: 'bob@example.org',
    body: 'the numbers are attached',
    attachments: 'q1-report.pdf',
    flags: 'hasattachment',
  },
  lunch: {
    day: '2024-03-10',
    messageId: 'lunch@example.org',
    subject: 'Re: lunch',
    sender: 'Bob bob@example.org',
    rcpt_to: 'alice@example.com',
    rcpt_cc: 'Carol carol@example.net',
    rcpt_env: 'alice@example.com carol@example.net',
    body: 'see you at noon, the report can wait',
  },
  spam: {
    day: '2024-04-01',
    messageId: 'spam@bad.test',
    subject: 'spam offer',
    sender: 'spammer@bad.test',
    rcpt_bcc: 'dave@hidden.test',
    rcpt_env: 'dave@hidden.test',
    body: 'buy now',
  },
  cafe: {
    day: '2024-05-05',
    messageId: 'cafe@exämple.fr',
    subject: 'hello',
    sender: 'Éloïse eloise@example.fr',
    rcpt_env: 'archive@example.com',
    body: 'café crème 🙂 tomorrow',
  },
  broken: {
    day: '2024-05-06',
    messageId: 'broken@example.com',
    subject: 'hello again',
    sender: 'mallory@example.com',
    rcpt_to: 'bob@example.org',
    body: 'nothing to see',
    flags: 'malformed',
  },
};

const idOf = (day: string, tiebreak = 1): number => idLowerBoundForTime(Date.parse(`${day}T12:00:00Z`)) + tiebreak;
const nameById = new Map<number, string>();

let db: Database.Database;

beforeAll(() => {
  db = new Database(':memory:');
  db.exec(FTS_DDL);
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT)');
  const insFts = db.prepare(
    `INSERT INTO message_fts(rowid, ${COLUMNS.join(', ')}) VALUES (?, ${COLUMNS.map(() => '?').join(', ')})`,
  );
  const insMsg = db.prepare('INSERT INTO messages (id, message_id) VALUES (?, ?)');
  for (const [name, row] of Object.entries(ROWS)) {
    const id = idOf(row.day);
    nameById.set(id, name);
    const r = row as unknown as Record<string, string | undefined>;
    insFts.run(id, ...COLUMNS.map((c) => r[c] ?? ''));
    insMsg.run(id, row.messageId);
  }
});

afterAll(() => db.close());

/** Runs a compiled query the way the search service would; returns matching row names, oldest first. */
function run(c: CompiledQuery): string[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (c.match !== null) {
    where.push('m.id IN (SELECT rowid FROM message_fts WHERE message_fts MATCH ?)');
    params.push(c.match);
  }
  if (c.minId !== null) {
    where.push('m.id >= ?');
    params.push(c.minId);
  }
  if (c.maxIdExclusive !== null) {
    where.push('m.id < ?');
    params.push(c.maxIdExclusive);
  }
  for (const id of c.messageIds) {
    where.push('m.message_id = ?');
    params.push(id);
  }
  const sql = `SELECT m.id FROM messages m ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY m.id`;
  return (db.prepare(sql).all(...params) as { id: number }[]).map((r) => nameById.get(r.id)!);
}

const search = (q: string): string[] => run(compileQuery(q));
const match = (q: string): string | null => compileQuery(q).match;

function expectQueryError(q: string, message: string | RegExp, position?: number): QueryError {
  let err: unknown;
  try {
    compileQuery(q);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${JSON.stringify(q)} to be rejected`).toBeInstanceOf(QueryError);
  const qe = err as QueryError;
  expect(qe.code).toBe('bad_query');
  if (typeof message === 'string') expect(qe.message).toContain(message);
  else expect(qe.message).toMatch(message);
  if (position !== undefined) expect(qe.position).toBe(position);
  return qe;
}

/** Everything outside FTS5 string literals must be our own syntax or a whitelisted column name. */
function assertOnlyQuotedUserText(m: string): void {
  const outside = m.replace(/"(?:[^"]|"")*"/g, ' ');
  expect(outside).not.toContain('"');
  for (const tok of outside.split(/[\s(){}:*-]+/).filter(Boolean)) {
    expect(['AND', 'OR', 'NOT', ...COLUMNS]).toContain(tok);
  }
}

describe('idLowerBoundForTime', () => {
  it('is unixSeconds * 2^20', () => {
    expect(idLowerBoundForTime(0)).toBe(0);
    expect(idLowerBoundForTime(Date.UTC(2024, 2, 1))).toBe(1709251200 * 2 ** 20);
    expect(idLowerBoundForTime(Date.UTC(2024, 2, 1) + 999)).toBe(1709251200 * 2 ** 20);
    expect(idLowerBoundForTime(-1)).toBe(-1 * 2 ** 20);
  });
  it('rejects non-finite times', () => {
    expect(() => idLowerBoundForTime(Number.NaN)).toThrow(RangeError);
  });
});

describe('parseQuery AST', () => {
  it('builds an AND root with OR binding tighter than AND', () => {
    expect(parseQuery('a OR b c')).toEqual({
      kind: 'and',
      position: 0,
      children: [
        {
          kind: 'or',
          position: 0,
          children: [
            { kind: 'text', field: 'any', value: 'a', prefix: false, quoted: false, position: 0 },
            { kind: 'text', field: 'any', value: 'b', prefix: false, quoted: false, position: 5 },
          ],
        },
        { kind: 'text', field: 'any', value: 'c', prefix: false, quoted: false, position: 7 },
      ],
    });
  });

  it('parses fields, negation, prefixes, phrases, dates and msgid', () => {
    const root = parseQuery('FROM:alice* -"big deal" -has:attachment after:2024-3-1 msgid:<x@y>');
    expect(root.children).toEqual([
      { kind: 'text', field: 'from', value: 'alice', prefix: true, quoted: false, position: 0 },
      {
        kind: 'not',
        position: 12,
        child: { kind: 'text', field: 'any', value: 'big deal', prefix: false, quoted: true, position: 13 },
      },
      { kind: 'not', position: 24, child: { kind: 'has', what: 'attachment', position: 25 } },
      { kind: 'date', op: 'after', date: '2024-03-01', ms: Date.UTC(2024, 2, 1), position: 40 },
      { kind: 'msgid', value: 'x@y', position: 55 },
    ]);
  });

  it('returns an empty AND for empty or unsearchable input', () => {
    for (const q of ['', '   ', '-', '...', '*', '- * ... 🙂 ()', '"" -""']) {
      expect(parseQuery(q)).toEqual({ kind: 'and', children: [], position: 0 });
    }
  });

  it('unwraps single-child groups and keeps multi-child groups as AND nodes', () => {
    expect(parseQuery('(a)').children[0]).toMatchObject({ kind: 'text', value: 'a' });
    expect(parseQuery('(a b) OR c').children[0]).toMatchObject({
      kind: 'or',
      children: [{ kind: 'and', children: [{ value: 'a' }, { value: 'b' }] }, { value: 'c' }],
    });
  });
});

describe('compileQuery: output shape', () => {
  it('bare words exclude the flags column', () => {
    expect(match('hello')).toBe('- {flags} : "hello"');
    expect(match('hello world')).toBe('- {flags} : "hello" AND - {flags} : "world"');
  });

  it('prefixes put the star outside the quotes', () => {
    expect(match('rep*')).toBe('- {flags} : "rep" *');
    expect(match('subject:"quarterly re"*')).toBe('{subject} : "quarterly re" *');
  });

  it('maps fields to the column whitelist', () => {
    expect(match('from:alice')).toBe('{sender} : "alice"');
    expect(match('to:alice')).toBe('{rcpt_to rcpt_cc rcpt_bcc rcpt_env} : "alice"');
    expect(match('cc:alice')).toBe('{rcpt_cc} : "alice"');
    expect(match('bcc:alice')).toBe('{rcpt_bcc} : "alice"');
    expect(match('Subject:"a b"')).toBe('{subject} : "a b"');
    expect(match('has:attachment')).toBe('{flags} : "hasattachment"');
  });

  it('compiles negations as <positive> NOT (<neg1> OR <neg2>)', () => {
    expect(match('a b -c -from:d')).toBe(
      '(- {flags} : "a" AND - {flags} : "b") NOT (- {flags} : "c" OR {sender} : "d")',
    );
    expect(match('(a OR b) -c')).toBe('(- {flags} : "a" OR - {flags} : "b") NOT (- {flags} : "c")');
  });

  it('doubles quotes and never lets user text outside a string literal', () => {
    expect(match('say"hi"')).toBe('- {flags} : "say""hi"""');
    expect(match('"a\0b"')).toBe('- {flags} : "a b"');
    expect(match('a\0b')).toBe('- {flags} : "a" AND - {flags} : "b"'); // NUL separates like a space
    assertOnlyQuotedUserText(match('NEAR(a b) AND NOT {flags}: x ^y +z')!);
  });

  it('drops words without token characters', () => {
    expect(match('hello - ... *** 🙂 "!!"')).toBe('- {flags} : "hello"');
    expect(match('hello -... OR ,')).toBe('- {flags} : "hello"');
  });

  it('reports an empty query', () => {
    expect(compileQuery('')).toEqual({ match: null, minId: null, maxIdExclusive: null, messageIds: [], empty: true });
    expect(compileQuery(' ... ').empty).toBe(true);
    expect(compileQuery('after:2024-01-01').empty).toBe(false);
  });

  it('turns dates into rowid bounds', () => {
    const c = compileQuery('after:2024-03-01 before:2024/04/01');
    expect(c).toEqual({
      match: null,
      minId: idLowerBoundForTime(Date.UTC(2024, 2, 1)),
      maxIdExclusive: idLowerBoundForTime(Date.UTC(2024, 3, 1)),
      messageIds: [],
      empty: false,
    });
    // The tightest of repeated bounds wins.
    const r = compileQuery('after:2024-01-01 after:2024-02-01 before:2024-06-01 before:2024-05-01');
    expect(r.minId).toBe(idLowerBoundForTime(Date.UTC(2024, 1, 1)));
    expect(r.maxIdExclusive).toBe(idLowerBoundForTime(Date.UTC(2024, 4, 1)));
    expect(compileQuery('after:2024-02-29').minId).toBe(idLowerBoundForTime(Date.UTC(2024, 1, 29)));
  });

  it('keeps far-away dates within safe integers', () => {
    const c = compileQuery('after:0001-01-01 before:9999-12-31');
    expect(Number.isSafeInteger(c.minId)).toBe(true);
    expect(Number.isSafeInteger(c.maxIdExclusive)).toBe(true);
  });

  it('extracts message ids with or without angle brackets', () => {
    expect(compileQuery('msgid:<abc@host>').messageIds).toEqual(['abc@host']);
    expect(compileQuery('MsgId:abc@host').messageIds).toEqual(['abc@host']);
    expect(compileQuery('msgid:"<abc@host>"').messageIds).toEqual(['abc@host']);
    expect(compileQuery('(msgid:<a)b@host>) x').messageIds).toEqual(['a)b@host']);
    expect(compileQuery('msgid:<abc@host> msgid:abc@host').messageIds).toEqual(['abc@host']);
    expect(compileQuery('msgid:<abc@host> hello').match).toBe('- {flags} : "hello"');
  });
});

describe('compileQuery: errors', () => {
  it('rejects queries that only exclude', () => {
    const msg = 'add at least one word or field to search for; a query cannot only exclude';
    expectQueryError('-spam', msg, 0);
    expectQueryError('-spam -"free money" -from:x', msg);
    expectQueryError('-has:attachment', msg);
    expectQueryError('after:2024-01-01 -spam', msg);
    expectQueryError('msgid:<a@b> -spam', msg);
    expectQueryError('x OR (-a -b)', msg);
    expectQueryError('x -(-a)', msg);
  });

  it('rejects OR next to an excluded term', () => {
    expectQueryError('-a OR b', /OR cannot be combined with an excluded term: "-a" at position 1/, 0);
    expectQueryError('a OR -b', /excluded term: "-b" at position 6/, 5);
    expectQueryError('a OR (-b)', 'excluded term');
  });

  it('rejects dangling OR', () => {
    expectQueryError('OR a', 'OR at position 1 needs a term before it', 0);
    expectQueryError('a OR', 'OR at position 3 needs a term after it', 2);
    expectQueryError('a OR OR b', 'needs a term after it');
    expectQueryError('(a OR)', 'needs a term after it');
  });

  it('reports quotes and parentheses', () => {
    expectQueryError('hello "abc', 'unterminated quote starting at position 7', 6);
    expectQueryError('from:"abc', 'unterminated quote starting at position 6', 5);
    expectQueryError('x (a OR b', 'missing ")" for the "(" at position 3', 2);
    expectQueryError('('.repeat(MAX_NESTING + 1) + 'a' + ')'.repeat(MAX_NESTING + 1), 'too many nested parentheses');
  });

  it('reports empty or unsearchable field values', () => {
    expectQueryError('from:', 'from: needs a value', 0);
    expectQueryError('hello TO: bob', 'to: needs a value', 6);
    expectQueryError('(subject:)', 'subject: needs a value');
    expectQueryError('msgid:<>', 'msgid: needs a value');
    expectQueryError('from:"  "', 'from: needs a value');
    expectQueryError('from:***', 'needs a word before the "*"');
    expectQueryError('from:"..."', 'nothing searchable');
    expectQueryError('from:(a b)', 'groups are not supported');
    expectQueryError('has:pdf', 'has: at position 1 only supports has:attachment, got "pdf"');
  });

  it('validates dates', () => {
    expectQueryError('after:2024-13-01', 'after: expects a date like 2024-03-01, got "2024-13-01"', 0);
    expectQueryError('x before:2023-02-29', 'before: expects a date like 2024-03-01, got "2023-02-29"', 2);
    expectQueryError('after:2024-04-31', 'got "2024-04-31"');
    expectQueryError('after:yesterday', 'got "yesterday"');
    expectQueryError('after:2024-03-01T00:00', 'expects a date');
    expectQueryError('after:0000-01-01', 'expects a date');
    expectQueryError('after:2024-03-02 before:2024-03-01', 'after: is later than before:', 0);
    expectQueryError('after:2024-03-01 before:2024-03-01', 'use after:2024-03-01 before:2024-03-02');
  });

  it('rejects filters in places that cannot become bounds', () => {
    expectQueryError('x -after:2024-01-01', 'after: at position 4 cannot be excluded with "-"; use before: instead', 3);
    expectQueryError('x -msgid:a@b', 'msgid: at position 4 cannot be excluded');
    expectQueryError('a OR before:2024-01-01', 'before: at position 6 cannot be used inside OR', 5);
    expectQueryError('a OR (b msgid:x@y)', 'msgid: at position 9 cannot be used inside OR');
    expectQueryError('x -(a after:2024-01-01)', 'after:');
  });

  it('rejects overly long input', () => {
    expectQueryError('a'.repeat(MAX_QUERY_LENGTH + 1), 'query is too long');
  });

  it('treats unknown fields as text', () => {
    expect(match('re: foo:bar')).toBe('- {flags} : "re:" AND - {flags} : "foo:bar"');
  });
});

describe('compileQuery: results against FTS5', () => {
  it('matches words, phrases and prefixes', () => {
    expect(search('report')).toEqual(['report', 'lunch']);
    expect(search('"quarterly report"')).toEqual(['report']);
    expect(search('"report quarterly"')).toEqual([]);
    expect(search('quart*')).toEqual(['report']);
    expect(search('numbers attached')).toEqual(['report']);
  });

  it('never matches the flags column with bare words', () => {
    expect(search('hasattachment')).toEqual([]);
    expect(search('malformed')).toEqual([]);
    expect(search('"hasattachment"')).toEqual([]);
    expect(search('hasattach*')).toEqual([]);
  });

  it('supports has:attachment and its negation', () => {
    expect(search('has:attachment')).toEqual(['report']);
    expect(search('report -has:attachment')).toEqual(['lunch']);
  });

  it('searches fields', () => {
    expect(search('from:alice@example.com')).toEqual(['report']);
    expect(search('from:example.com')).toEqual(['report', 'broken']);
    expect(search('from:alice')).toEqual(['report']);
    expect(search('from:"alice smith"')).toEqual(['report']);
    expect(search('to:alice')).toEqual(['lunch']);
    expect(search('to:dave@hidden.test')).toEqual(['spam']); // Bcc
    expect(search('to:archive@example.com')).toEqual(['cafe']); // envelope only
    expect(search('cc:carol')).toEqual(['lunch']);
    expect(search('cc:alice')).toEqual([]);
    expect(search('bcc:dave')).toEqual(['spam']);
    expect(search('subject:report')).toEqual(['report']);
    expect(search('subject:rep*')).toEqual(['report']);
    expect(search('SUBJECT:hello')).toEqual(['cafe', 'broken']);
  });

  it('handles OR, groups and negation', () => {
    expect(search('lunch OR spam')).toEqual(['lunch', 'spam']);
    expect(search('lunch OR spam noon')).toEqual(['lunch']);
    expect(search('(lunch OR spam) -noon')).toEqual(['spam']);
    expect(search('report -from:bob')).toEqual(['report']);
    expect(search('hello -again')).toEqual(['cafe']);
    expect(search('hello -"hello again"')).toEqual(['cafe']);
    expect(search('hello -(again OR tomorrow)')).toEqual([]);
    expect(search('(report -noon) OR spam')).toEqual(['report', 'spam']);
    expect(search('AND OR NOT')).toEqual([]);
  });

  it('folds case and diacritics, ignores emoji', () => {
    expect(search('CAFE')).toEqual(['cafe']);
    expect(search('from:eloise')).toEqual(['cafe']);
    expect(search('crème 🙂')).toEqual(['cafe']);
  });

  it('applies date bounds and message ids', () => {
    expect(search('after:2024-03-10')).toEqual(['lunch', 'spam', 'cafe', 'broken']);
    expect(search('before:2024-03-10')).toEqual(['report']);
    expect(search('after:2024-03-01 before:2024-04-02')).toEqual(['lunch', 'spam']);
    expect(search('report after:2024-03-01')).toEqual(['lunch']);
    expect(search('msgid:<spam@bad.test>')).toEqual(['spam']);
    expect(search('msgid:spam@bad.test buy')).toEqual(['spam']);
    expect(search('msgid:spam@bad.test report')).toEqual([]);
    expect(search('msgid:cafe@exämple.fr')).toEqual(['cafe']);
    expect(search('')).toEqual(['report', 'lunch', 'spam', 'cafe', 'broken']);
  });
});

/** Compile, then run against FTS5: only QueryError may be thrown, and SQLite must accept the MATCH. */
function assertSafe(q: string): 'ok' | 'rejected' {
  let c: CompiledQuery;
  try {
    c = compileQuery(q);
  } catch (e) {
    if (!(e instanceof QueryError)) throw new Error(`non-QueryError for ${JSON.stringify(q)}: ${String(e)}`);
    expect(typeof e.message).toBe('string');
    if (e.position !== undefined) {
      expect(e.position).toBeGreaterThanOrEqual(0);
      expect(e.position).toBeLessThanOrEqual(q.length);
    }
    return 'rejected';
  }
  if (c.match !== null) {
    assertOnlyQuotedUserText(c.match);
    try {
      run(c);
    } catch (e) {
      throw new Error(`SQLite rejected ${JSON.stringify(c.match)} compiled from ${JSON.stringify(q)}: ${String(e)}`);
    }
  }
  for (const v of [c.minId, c.maxIdExclusive]) if (v !== null) expect(Number.isSafeInteger(v)).toBe(true);
  expect(c.empty).toBe(c.match === null && c.minId === null && c.maxIdExclusive === null && c.messageIds.length === 0);
  return 'ok';
}

/** mulberry32: small seeded PRNG so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('hostile input', () => {
  const HOSTILE = [
    '"', '""', '"""', "'", "'; DROP TABLE messages; --", '*', '**', 'a*b', '^', '^a', 'a ^b', 'NEAR(', 'NEAR(a b)',
    'NEAR(a b, 2)', ':', 'flags:hasattachment', 'flags : x', '{', '}', '{flags}', '{flags}: x', '- {flags} : x',
    'AND', 'OR', 'NOT', 'a AND b', 'a NOT b', 'a OR b', 'a OR', ')', '())', ')(', '(', 'a)b', '(a)b)', '\0',
    'a\0b', '"a\0b"', 'from:"\0"', 'x'.repeat(MAX_QUERY_LENGTH), 'é', 'ﬁ', 'İstanbul', '日本語のメール', 'مرحبا',
    '🙂', '👩‍👩‍👧', 'a🙂b', '"🙂"', 'from:🙂', 'subject:🙂*', '\uD800', 'a\uDC00b', '\u0301', 'x \u0301', '\uFFFF',
    '\u200B', '\u2028a', 'a\u00A0b', '-', '--a', 'x --a', '-"', '-(', '-)', 'x -()', 'from:x"y', 'to:"a""b"',
    'msgid:<', 'msgid:<a', 'msgid:>', 'msgid:"x"y', 'x msgid:<a b>', 'after:', 'after:"2024-01-01"',
    'before:2024-01-01*', 'has:', 'has:attachment*', 'a OR b OR c OR d', '(((a)))', 'x*', '"x"*', '"x" *',
    'x (a -b) OR c', '+a', 'a + b', 'col:x', 'sender:x', 'rowid:1', 'x:"y z"', '\\', '\\"', '%', '_', '$1',
  ];

  it('every hostile input compiles to valid FTS5 or a QueryError', () => {
    for (const q of HOSTILE) {
      assertSafe(q);
      assertSafe(`hello ${q}`);
      assertSafe(`${q} world`);
      assertSafe(`from:${q}`);
      assertSafe(`-${q} x`);
      assertSafe(`(${q}) OR y`);
      assertSafe(`"${q}"`);
    }
  });

  it('accepts long queries with many terms', () => {
    const words = Array.from({ length: 800 }, (_, i) => `w${i}`);
    expect(assertSafe(words.join(' ').slice(0, MAX_QUERY_LENGTH))).toBe('ok');
    expect(assertSafe(words.join(' OR ').slice(0, MAX_QUERY_LENGTH - 10) + ' xx')).toBe('ok');
    expect(assertSafe('x ' + words.map((w) => '-' + w).join(' ').slice(0, MAX_QUERY_LENGTH - 2))).toBe('ok');
    expect(assertSafe('x'.repeat(MAX_QUERY_LENGTH))).toBe('ok');
  });

  it('accepts the deepest allowed nesting in every shape', () => {
    const n = MAX_NESTING;
    const shapes = [
      '('.repeat(n) + 'a' + ')'.repeat(n),
      'a ' + '-(b '.repeat(n).trimEnd() + ')'.repeat(n),
      'a ' + '-(b OR (c '.repeat(n / 2).trimEnd() + '))'.repeat(n / 2),
      'a OR (b -c '.repeat(n).trimEnd() + ')'.repeat(n),
      '(a -b c OR '.repeat(n) + 'c' + ')'.repeat(n),
      'x (a -(b -c) d OR '.repeat(n / 2) + 'c' + ')'.repeat(n / 2),
      'x -(a -(b OR (c -d '.repeat(n / 3).trimEnd() + ')))'.repeat(n / 3),
    ];
    for (const q of shapes) expect(assertSafe(q), q).toBe('ok');
  });

  it('random strings from a nasty alphabet never produce an SQLite error', () => {
    const ALPHABET = [
      '"', "'", '*', '^', 'NEAR(', 'NEAR', ':', '{', '}', 'AND', 'NOT', 'OR', '(', ')', '-', '+', '\0', ' ', ' ',
      ' ', '\t', '\n', 'a', 'b', 'x', 'é', '🙂', '\uD83D', '\u0301', '日本', 'from:', 'to:', 'cc:', 'bcc:',
      'subject:', 'has:', 'has:attachment', 'after:', 'before:', '2024-01-01', '2024-13-01', 'msgid:', '<', '>',
      '@', '.', ',', 'flags', '{flags}', 'example.com', '\\', '""', 'foo:', 'RE:', '%', '$', '#', '0',
    ];
    const rand = prng(0x5eed);
    const outcomes = { ok: 0, rejected: 0 };
    for (let iter = 0; iter < 4000; iter++) {
      const len = 1 + Math.floor(rand() * 14);
      let q = '';
      for (let k = 0; k < len; k++) q += ALPHABET[Math.floor(rand() * ALPHABET.length)];
      outcomes[assertSafe(q)]++;
    }
    // Both paths must actually be exercised.
    expect(outcomes.ok).toBeGreaterThan(500);
    expect(outcomes.rejected).toBeGreaterThan(200);
  });

  it('random code points never produce an SQLite error', () => {
    const rand = prng(42);
    for (let iter = 0; iter < 1500; iter++) {
      const len = 1 + Math.floor(rand() * 20);
      let q = '';
      for (let k = 0; k < len; k++) {
        const r = rand();
        // Mostly ASCII (syntax characters), some BMP, some astral, occasional lone surrogate.
        const cp =
          r < 0.6 ? Math.floor(rand() * 128) : r < 0.9 ? Math.floor(rand() * 0xffff) : 0x10000 + Math.floor(rand() * 0xfffff);
        q += cp <= 0xffff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
      }
      assertSafe(q);
    }
  });
});
