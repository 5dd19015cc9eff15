import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createTokenStore, type Role } from '../../src/db/tokens.js';
import { createUserStore } from '../../src/db/users.js';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import type { LedgerRecord } from '../../src/ledger/records.js';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { sendMail } from '../helpers/smtp-client.js';

export const ARCHIVE_DOMAIN = 'archive.example';

/** A running archive in envelope mode, as Postfix's bcc maps would feed it. */
export function startRetentionArchive(dataDir?: string, env: Record<string, string> = {}): Promise<TestArchive> {
  return startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: `@${ARCHIVE_DOMAIN}`, ...env }, dataDir);
}

/** Delivers one message with its envelope encoded into archive addresses; expects a 250. */
export async function deliver(archive: TestArchive, from: string, rcpts: string[], raw: string): Promise<void> {
  const to = [...rcpts.map((a) => encodeJournalAddress('rcpt', a, ARCHIVE_DOMAIN)), encodeJournalAddress('from', from, ARCHIVE_DOMAIN)];
  expect((await sendMail(archive.smtp.port, { from, to }, raw)).code).toBe(250);
}

/** A message from `from` to `to`, with a given Date header and Message-ID. */
export function mail(opts: { from: string; to: string[]; subject: string; date?: string; id: string; body?: string }): string {
  return buildMessage({
    from: opts.from, to: opts.to, subject: opts.subject, messageId: opts.id, body: opts.body ?? `${opts.subject} body`,
    ...(opts.date ? { date: opts.date } : {}),
  });
}

export interface Call {
  method?: string;
  url: string;
  /** 'user': a token of an account with role user (created on first use). */
  role?: Role;
  body?: unknown;
}

const userTokens = new WeakMap<TestArchive, string>();
function tokenFor(archive: TestArchive, role: Role): string {
  if (role !== 'user') return archive.token(role);
  let t = userTokens.get(archive);
  if (!t) {
    const db = openDatabase({ file: path.join(archive.config.dataDir, 'spindle.db') });
    const u = createUserStore(db).create({ name: 'bob', source: 'local', roles: ['user'], addresses: ['bob@example.com'] });
    t = createTokenStore(db).create({ role: 'user', name: 'bob', user: u.id }).token;
    db.close();
    userTokens.set(archive, t);
  }
  return t;
}

/** One API call with a bearer token of the given role. */
export async function call<T = Record<string, unknown>>(archive: TestArchive, c: Call): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { authorization: `Bearer ${tokenFor(archive, c.role ?? 'auditor')}` };
  if (c.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${archive.http.port}${c.url}`, {
    method: c.method ?? 'GET', headers, ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Message ids by Message-ID (the part before @), from the database. */
export async function idsByMessageId(archive: TestArchive): Promise<Record<string, number>> {
  const r = await call<{ items: Array<{ id: number }> }>(archive, { url: '/api/search?q=&limit=500' });
  const ids: Record<string, number> = {};
  for (const item of r.body.items) {
    const m = await call<{ message_id: string }>(archive, { url: `/api/messages/${item.id}` });
    ids[m.body.message_id.split('@')[0]!] = item.id;
  }
  return ids;
}

/** Every ledger record of a data directory, in order. */
export function ledgerRecords(dataDir: string): LedgerRecord[] {
  const dir = path.join(dataDir, 'ledger');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort()
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LedgerRecord));
}

export const blobFile = (dataDir: string, sha: string): string => path.join(dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4), `${sha}.eml.gz`);
