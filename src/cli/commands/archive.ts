import type { Config } from '../../config/settings.js';
import { createArchiveReader, type MessageDetail } from '../../db/archive-reader.js';
import { QueryError } from '../../search/query.js';
import { createSearcher, type SearchHit } from '../../search/search.js';
import { readLedgerTail } from '../../ledger/tail.js';
import { createFsBlobStore } from '../../store/fs-store.js';
import { dataPaths } from '../../runtime/paths.js';
import { openArchiveDb } from '../context.js';
import { CliError } from '../errors.js';
import { pipeline } from 'node:stream/promises';

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

function parseLimit(value: string | undefined): number {
  if (value === undefined) return 20;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 500) throw new CliError('--limit expects a number from 1 to 500', 2);
  return Number(value);
}

const fmtBytes = (n: number): string =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`;

function hitLine(h: SearchHit): string {
  const from = h.from.name ? `${h.from.name} <${h.from.address}>` : h.from.address || '(no sender)';
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
  return `${String(h.id).padEnd(17)} ${h.date.slice(0, 16).replace('T', ' ')}  ${clip(from, 32)}  ${h.attachments ? '📎' : '  '} ${h.subject || '(no subject)'}`;
}

export function searchCommand(config: Config, query: string, opts: { json?: boolean; limit?: string; cursor?: string }): void {
  const db = openArchiveDb(config);
  try {
    const result = createSearcher(db).search(query, { limit: parseLimit(opts.limit), cursor: opts.cursor ?? null });
    if (opts.json) return out(JSON.stringify(result, null, 2));
    if (result.total === 0) return out(`No messages match ${JSON.stringify(query)}.`);
    out(`${result.total} message${result.total === 1 ? '' : 's'} match, newest first:`);
    for (const h of result.items) out(hitLine(h));
    if (result.next_cursor) out(`… more: spindle search ${JSON.stringify(query)} --cursor ${result.next_cursor}`);
  } catch (err) {
    if (err instanceof QueryError) throw new CliError(`bad query: ${err.message}`, 2);
    throw err;
  } finally {
    db.close();
  }
}

function describe(m: MessageDetail): string {
  const who = (a: { address: string; name: string }) => (a.name ? `${a.name} <${a.address}>` : a.address);
  const kinds = ['to', 'cc', 'bcc', 'envelope'] as const;
  const lines = [
    `Message ${m.id}`,
    `  Subject:     ${m.subject || '(no subject)'}`,
    `  From:        ${who(m.from) || '(none)'}`,
    ...kinds.map((k) => [k, m.recipients.filter((r) => r.kind === k)] as const)
      .filter(([, list]) => list.length > 0)
      .map(([k, list]) => `  ${(k[0]!.toUpperCase() + k.slice(1) + ':').padEnd(12)} ${list.map(who).join(', ')}`),
    `  Date:        ${m.date ?? '(none)'}   first seen ${m.first_seen}`,
    `  Message-ID:  ${m.message_id ?? '(none)'}`,
    `  Size:        ${fmtBytes(m.size)}   sha256 ${m.sha256}`,
    `  Parse:       ${m.parse_status}${m.defects.length ? ` (${m.defects.join(', ')})` : ''}`,
    `  Deliveries:  ${m.deliveries.length}`,
    ...m.deliveries.map((d) => `    seq ${d.seq}  ${d.received_at}  from ${d.client} (${d.helo})  MAIL FROM <${d.mail_from}>  ${d.rcpts.length} rcpt  ${d.dedup}`),
  ];
  if (m.attachments.length) {
    lines.push(`  Attachments: ${m.attachments.length}`);
    for (const a of m.attachments) lines.push(`    ${a.filename ?? '(unnamed)'}  ${a.content_type}  ${fmtBytes(a.size)}${a.inline ? '  inline' : ''}`);
  }
  return lines.join('\n');
}

export async function showCommand(config: Config, id: string, opts: { raw?: boolean; json?: boolean }): Promise<void> {
  if (!/^\d{1,16}$/.test(id)) throw new CliError(`message id must be a number, got ${JSON.stringify(id)}`, 2);
  const db = openArchiveDb(config);
  try {
    const m = createArchiveReader(db).message(Number(id));
    if (!m) throw new CliError(`no message ${id}`);
    if (opts.raw) {
      const store = createFsBlobStore({ dir: dataPaths(config.dataDir).blobs, recentCacheBytes: 0, readOnly: true });
      await pipeline(store.getStream(m.sha256), process.stdout);
      return;
    }
    out(opts.json ? JSON.stringify(m, null, 2) : describe(m));
  } finally {
    db.close();
  }
}

export async function statsCommand(config: Config, opts: { json?: boolean }): Promise<void> {
  const db = openArchiveDb(config);
  try {
    const s = createArchiveReader(db).stats();
    const lastSeq = await readLedgerTail(dataPaths(config.dataDir).ledger);
    const stats = {
      messages: s.messages, deliveries: s.deliveries, duplicates: s.duplicates, raw_bytes: s.raw_bytes,
      stored_bytes: s.stored_bytes, index_lag: { records: Math.max(0, lastSeq - s.indexed_seq) }, ledger_seq: lastSeq,
    };
    if (opts.json) return out(JSON.stringify(stats, null, 2));
    const ratio = s.raw_bytes ? ` (${((s.stored_bytes / s.raw_bytes) * 100).toFixed(0)}% of original)` : '';
    out([
      `Messages:    ${s.messages}`,
      `Deliveries:  ${s.deliveries}  (${s.duplicates} merged as duplicates)`,
      `Original:    ${fmtBytes(s.raw_bytes)}`,
      `On disk:     ${fmtBytes(s.stored_bytes)}${ratio}`,
      `Ledger:      ${lastSeq} records; ${stats.index_lag.records} not yet searchable`,
    ].join('\n'));
  } finally {
    db.close();
  }
}
