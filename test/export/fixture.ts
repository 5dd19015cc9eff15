/**
 * A small archive for export tests, built without SMTP so that the bytes are exactly these:
 *   m1  alice -> bob, Bcc carol     CRLF, "From " and ">From " lines in the body   2024-03-01
 *   m2  dave -> erin                LF-only line endings                           2024-03-02
 *   m3  erin -> alice, Cc team@     CRLF                                           2024-03-03
 *   m4  frank@other.example -> bob  2 MB (read as a stream, not whole)             2024-03-04
 *   m5  grace@example.org -> henry@badexample.com (not example.com)               2024-03-05
 *   m6  ivan@sub.example.com -> alice                                              2024-03-06
 * Envelope mode (journal-encoded RCPTs under @archive.example), as in test/http/authz.test.ts.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { openDatabase } from '../../src/db/database.js';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import { seedArchive } from '../helpers/seed-archive.js';

export const ARCHIVE_ENV = { SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' };

export interface FixtureMessage {
  key: string;
  raw: Buffer;
  sha256: string;
  from: string;
}

function message(key: string, day: number, from: string, to: string[], opts: { cc?: string[]; body: string; eol?: string }): Buffer {
  const eol = opts.eol ?? '\r\n';
  const headers = [
    `From: ${from}`, `To: ${to.join(', ')}`, ...(opts.cc ? [`Cc: ${opts.cc.join(', ')}`] : []),
    `Subject: ${key} ${key === 'm1' ? 'Quarterly plan — Grüße' : 'note'}`, `Date: Tue, 0${day} Mar 2024 12:04:00 +0000`,
    `Message-ID: <${key}@example.com>`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8',
  ];
  return Buffer.from(`${headers.join(eol)}${eol}${eol}${opts.body.replace(/\n/g, eol)}`, 'utf8');
}

export function fixtureMessages(): Array<FixtureMessage & { rcpts: string[] }> {
  const big = Array.from({ length: 30_000 }, (_, i) => `${i % 97 === 0 ? 'From the middle ' : ''}line ${i} ${'x'.repeat(60)}\n`).join('');
  const list: Array<[string, string, string[], string[], Parameters<typeof message>[4], number]> = [
    ['m1', 'alice@example.com', ['bob@example.com'], ['bob@example.com', 'carol@example.com'], { body: 'pineapple plan\nFrom here on\n>From there\n' }, 1],
    ['m2', 'dave@example.com', ['erin@example.com'], ['erin@example.com'], { body: 'pineapple secret\nFrom dave\n', eol: '\n' }, 2],
    ['m3', 'erin@example.com', ['alice@example.com'], ['alice@example.com', 'team@example.com'], { cc: ['team@example.com'], body: 'pineapple team\n' }, 3],
    ['m4', 'frank@other.example', ['bob@example.com'], ['bob@example.com'], { body: big }, 4],
    ['m5', 'grace@example.org', ['henry@badexample.com'], ['henry@badexample.com'], { body: 'lookalike domain\n' }, 5],
    ['m6', 'ivan@sub.example.com', ['alice@example.com'], ['alice@example.com'], { body: 'subdomain\n' }, 6],
  ];
  return list.map(([key, from, to, rcpts, opts, day]) => {
    const raw = message(key, day, from, to, opts);
    return {
      key, raw, from, sha256: createHash('sha256').update(raw).digest('hex'),
      rcpts: [...rcpts.map((a) => encodeJournalAddress('rcpt', a, 'archive.example')), encodeJournalAddress('from', from, 'archive.example')],
    };
  });
}

/** Seeds the archive in `dataDir`; returns the messages with their ids. */
export async function seedExportFixture(dataDir: string): Promise<Array<FixtureMessage & { id: number }>> {
  const messages = fixtureMessages();
  await seedArchive(dataDir, messages.map((m) => ({ raw: m.raw, mailFrom: m.from, rcpts: m.rcpts })), { env: ARCHIVE_ENV });
  const db = openDatabase({ file: path.join(dataDir, 'spindle.db') });
  try {
    const ids = new Map((db.prepare('SELECT id, message_id FROM messages').all() as Array<{ id: number; message_id: string }>).map((r) => [r.message_id.split('@')[0]!, r.id]));
    return messages.map((m) => ({ key: m.key, raw: m.raw, sha256: m.sha256, from: m.from, id: ids.get(m.key)! }));
  } finally {
    db.close();
  }
}
