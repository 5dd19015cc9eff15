import type { ParsedMail } from '../ingest/types.js';
import type { Participant, RecoveredEnvelope } from '../journal/envelope.js';
import type { DeliveryRecord, StateRecord } from '../ledger/records.js';
import type { Db } from './database.js';
import { createRetentionWriter } from './retention-writer.js';

/** One delivery ready to be written: its ledger record, what the parser read, who it was for. */
export interface DeliveryItem {
  record: DeliveryRecord;
  parsed: ParsedMail;
  envelope: RecoveredEnvelope;
}

/** A record that carries no mail (a rule, a hold, a purge): applied as it is. */
export interface StateItem {
  record: StateRecord;
}

export type IndexItem = DeliveryItem | StateItem;

const isDelivery = (item: IndexItem): item is DeliveryItem => item.record.type === 'delivery';

export type DedupKind = 'new' | 'same-bytes' | 'same-content';

export interface ApplyResult {
  seq: number;
  messageId: number;
  dedup: DedupKind;
}

/** Defects that mean the MIME structure itself was broken (flagged `malformed` in search). */
const STRUCTURAL_DEFECTS = new Set(['parse-error', 'parse-timeout', 'no-header-block', 'missing-final-boundary']);
const TIEBREAK = 2 ** 20;
const EARLIEST_PLAUSIBLE = Date.UTC(1980, 0, 1);

/**
 * When the message was written, for ordering: its Date header when plausible, else its arrival.
 * A Date more than two days after arrival is a clock or a forgery, not the future.
 */
export function sortTime(parsedDate: string | null, arrivalIso: string): number {
  const arrival = Date.parse(arrivalIso);
  if (parsedDate) {
    const t = Date.parse(parsedDate);
    if (Number.isFinite(t) && t >= EARLIEST_PLAUSIBLE && t <= arrival + 2 * 86_400_000) return t;
  }
  return arrival;
}

const addressLine = (list: Array<{ address: string; name: string }>): string =>
  list.map((a) => (a.name ? `${a.name} <${a.address}>` : a.address)).join('\n');

export interface ArchiveWriter {
  /** Applies ledger records in seq order in one transaction; already applied ones are skipped. */
  applyBatch(items: IndexItem[]): ApplyResult[];
  indexedSeq(): number;
}

/** The last ledger seq applied to the database, read through `db` (any connection). */
export function indexedSeqReader(db: Db): () => number {
  const stmt = db.prepare("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_seq'").pluck();
  return () => Number(stmt.get() ?? 0);
}

/** The single writer of derived archive tables. Statements are prepared once. */
export function createArchiveWriter(db: Db): ArchiveWriter {
  const q = {
    deliveryExists: db.prepare('SELECT 1 FROM deliveries WHERE seq = ?').pluck(),
    messageByBlob: db.prepare('SELECT message FROM deliveries WHERE blob_sha256 = ? LIMIT 1').pluck(),
    messageByContent: db.prepare('SELECT id FROM messages WHERE message_id = ? AND body_sha256 = ? LIMIT 1').pluck(),
    // A purged message's id is never given to another one: links to it must not show other mail.
    idTaken: db.prepare('SELECT 1 FROM messages WHERE id = @id UNION ALL SELECT 1 FROM tombstones WHERE id = @id').pluck(),
    insertMessage: db.prepare(`INSERT INTO messages (id, blob_sha256, message_id, body_sha256, subject, from_addr, from_name, date,
      sort_time, first_seen, size, attachment_count, in_reply_to, refs, envelope_sender, envelope_mode, parse_status, defects, first_seq)
      VALUES (@id, @blob, @messageId, @bodySha, @subject, @fromAddr, @fromName, @date, @sortTime, @firstSeen, @size,
      @attachmentCount, @inReplyTo, @refs, @envelopeSender, @envelopeMode, @status, @defects, @seq)`),
    insertDelivery: db.prepare(`INSERT INTO deliveries (seq, message, blob_sha256, received_at, mail_from, rcpts, client, helo, session, tls, size, dedup)
      VALUES (@seq, @message, @blob, @receivedAt, @mailFrom, @rcpts, @client, @helo, @session, @tls, @size, @dedup)`),
    insertBlob: db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, stored_size) VALUES (?, ?, ?)'),
    insertRecipient: db.prepare('INSERT OR IGNORE INTO recipients (message, address, name, kind) VALUES (?, ?, ?, ?)'),
    recipientsOf: db.prepare('SELECT address, name, kind FROM recipients WHERE message = ?'),
    insertParticipant: db.prepare('INSERT OR IGNORE INTO participants (message, address) VALUES (?, ?)'),
    insertAttachment: db.prepare(`INSERT INTO attachments (message, idx, filename, content_type, size, sha256, content_id, inline)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    insertFts: db.prepare(`INSERT INTO message_fts (rowid, subject, sender, rcpt_to, rcpt_cc, rcpt_bcc, rcpt_env, body, attachments, flags)
      VALUES (@id, @subject, @sender, @to, @cc, @bcc, @env, @body, @attachments, @flags)`),
    updateFtsRecipients: db.prepare('UPDATE message_fts SET rcpt_to = @to, rcpt_cc = @cc, rcpt_bcc = @bcc, rcpt_env = @env WHERE rowid = @id'),
    setIndexedSeq: db.prepare("INSERT INTO meta (key, value) VALUES ('indexed_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
  };
  const indexedSeq = indexedSeqReader(db);
  const retention = createRetentionWriter(db);

  function allocateId(time: number, seq: number): number {
    let id = Math.floor(time / 1000) * TIEBREAK + (seq % TIEBREAK);
    while (q.idTaken.get({ id })) id++;
    return id;
  }

  function recipientColumns(rows: Participant[]): { to: string; cc: string; bcc: string; env: string } {
    const of = (kind: Participant['kind']) => addressLine(rows.filter((r) => r.kind === kind));
    return { to: of('to'), cc: of('cc'), bcc: of('bcc'), env: of('envelope') };
  }

  function insertNew(item: DeliveryItem): number {
    const { record, parsed, envelope } = item;
    const time = sortTime(parsed.date, record.ts);
    const id = allocateId(time, record.seq);
    const files = parsed.attachments.filter((a) => !a.inline);
    const from = parsed.from[0];
    q.insertMessage.run({
      id, blob: record.blob, messageId: parsed.messageId, bodySha: parsed.bodySha256, subject: parsed.subject,
      fromAddr: from?.address ?? '', fromName: from?.name ?? '', date: parsed.date, sortTime: time, firstSeen: record.ts,
      size: record.size, attachmentCount: files.length, inReplyTo: parsed.inReplyTo, refs: JSON.stringify(parsed.references),
      envelopeSender: envelope.envelopeSender, envelopeMode: envelope.mode, status: parsed.status,
      defects: JSON.stringify(parsed.defects), seq: record.seq,
    });
    parsed.attachments.forEach((a, i) =>
      q.insertAttachment.run(id, i, a.filename, a.contentType, a.size, a.sha256, a.contentId, a.inline ? 1 : 0));
    const flags: string[] = [];
    if (files.length > 0) flags.push('hasattachment');
    if (parsed.status !== 'ok' || parsed.defects.some((d) => STRUCTURAL_DEFECTS.has(d))) flags.push('malformed');
    const senders = [...parsed.from, ...parsed.sender];
    for (const a of senders) addParticipant(id, a.address);
    const senderText = [addressLine(senders), envelope.envelopeSender ?? ''].filter(Boolean).join('\n');
    q.insertFts.run({
      id, subject: parsed.subject, sender: senderText, ...recipientColumns(envelope.recipients), body: parsed.text,
      attachments: parsed.attachments.map((a) => a.filename ?? '').filter(Boolean).join('\n'), flags: flags.join(' '),
    });
    return id;
  }

  /** Who may see the message as a 'user': see migrations/003_accounts.sql. */
  function addParticipant(message: number, address: string): void {
    if (address) q.insertParticipant.run(message, address.toLowerCase());
  }

  function mergeRecipients(message: number, recipients: Participant[]): boolean {
    let added = 0;
    for (const r of recipients) {
      added += q.insertRecipient.run(message, r.address, r.name, r.kind).changes;
      addParticipant(message, r.address);
    }
    return added > 0;
  }

  function applyOne(item: DeliveryItem): ApplyResult | null {
    const { record, parsed, envelope } = item;
    if (q.deliveryExists.get(record.seq)) return null;
    let dedup: DedupKind;
    let message = q.messageByBlob.get(record.blob) as number | undefined;
    if (message !== undefined) dedup = 'same-bytes';
    else {
      message = parsed.messageId ? (q.messageByContent.get(parsed.messageId, parsed.bodySha256) as number | undefined) : undefined;
      if (message !== undefined) dedup = 'same-content';
      else {
        message = insertNew(item);
        dedup = 'new';
      }
    }
    q.insertBlob.run(record.blob, record.size, record.stored);
    const env = record.env;
    q.insertDelivery.run({
      seq: record.seq, message, blob: record.blob, receivedAt: record.ts, mailFrom: env.mailFrom,
      rcpts: JSON.stringify(env.rcpts), client: env.client, helo: env.helo, session: env.session,
      tls: env.tls ? 1 : 0, size: record.size, dedup,
    });
    const changed = mergeRecipients(message, envelope.recipients);
    if (dedup !== 'new' && changed) {
      const all = q.recipientsOf.all(message) as Participant[];
      q.updateFtsRecipients.run({ id: message, ...recipientColumns(all) });
    }
    return { seq: record.seq, messageId: message, dedup };
  }

  const applyBatch = db.transaction((items: IndexItem[]): ApplyResult[] => {
    const results: ApplyResult[] = [];
    const applied = indexedSeq();
    let last = applied;
    for (const item of items) {
      if (isDelivery(item)) {
        const r = applyOne(item);
        if (r) results.push(r);
      } else if (item.record.seq > applied) {
        // Deliveries are skipped by seq above; rules, holds and purges by the index position
        // (a batch replayed after a crash of the index thread may hold records already applied).
        retention.apply(item.record);
      }
      last = Math.max(last, item.record.seq);
    }
    q.setIndexedSeq.run(String(last));
    return results;
  });

  return {
    applyBatch,
    indexedSeq,
  };
}
