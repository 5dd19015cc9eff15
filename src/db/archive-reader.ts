import type { Db } from './database.js';

export interface MessageDetail {
  id: number;
  sha256: string;
  message_id: string | null;
  subject: string;
  from: { address: string; name: string };
  date: string | null;
  sort_date: string;
  first_seen: string;
  size: number;
  envelope_sender: string | null;
  envelope_mode: string;
  parse_status: string;
  defects: string[];
  in_reply_to: string | null;
  references: string[];
  recipients: Array<{ address: string; name: string; kind: string }>;
  deliveries: Array<{
    seq: number; received_at: string; sha256: string; mail_from: string; rcpts: Array<{ address: string; orcpt?: string }>;
    client: string; helo: string; tls: boolean; size: number; dedup: string;
  }>;
  attachments: Array<{ filename: string | null; content_type: string; size: number; sha256: string; content_id: string | null; inline: boolean }>;
}

export interface ArchiveStats {
  messages: number;
  deliveries: number;
  duplicates: number;
  raw_bytes: number;
  stored_bytes: number;
  indexed_seq: number;
}

export interface ArchiveReader {
  message(id: number): MessageDetail | null;
  /** One of the account's addresses takes part in the message (migrations/003_accounts.sql). */
  isParticipant(message: number, userId: number): boolean;
  /**
   * The message as a participant may see it: Bcc and envelope recipients only where they are the
   * account's own addresses, and no delivery envelopes (they name every recipient).
   */
  redactFor(message: MessageDetail, userId: number): MessageDetail;
  /** Blob holding the bytes of the message's first delivery. */
  blobOf(id: number): { sha256: string; size: number } | null;
  stats(): ArchiveStats;
}

export function createArchiveReader(db: Db): ArchiveReader {
  const q = {
    message: db.prepare('SELECT * FROM messages WHERE id = ?'),
    recipients: db.prepare("SELECT address, name, kind FROM recipients WHERE message = ? ORDER BY CASE kind WHEN 'to' THEN 0 WHEN 'cc' THEN 1 WHEN 'bcc' THEN 2 ELSE 3 END, address"),
    deliveries: db.prepare('SELECT * FROM deliveries WHERE message = ? ORDER BY seq'),
    attachments: db.prepare('SELECT * FROM attachments WHERE message = ? ORDER BY idx'),
    blob: db.prepare('SELECT blob_sha256 AS sha256, size FROM messages WHERE id = ?'),
    participant: db.prepare('SELECT 1 FROM participants p JOIN user_addresses ua ON ua.address = p.address WHERE p.message = ? AND ua.user = ? LIMIT 1').pluck(),
    addresses: db.prepare('SELECT address FROM user_addresses WHERE user = ?').pluck(),
    counts: db.prepare(`SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM deliveries) AS deliveries,
      (SELECT coalesce(sum(size), 0) FROM blobs) AS raw_bytes, (SELECT coalesce(sum(stored_size), 0) FROM blobs) AS stored_bytes,
      (SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'indexed_seq'), 0)) AS indexed_seq`),
  };

  return {
    message(id) {
      const m = q.message.get(id) as Record<string, unknown> | undefined;
      if (!m) return null;
      const deliveries = (q.deliveries.all(id) as Array<Record<string, unknown>>).map((d) => ({
        seq: d.seq as number,
        received_at: d.received_at as string,
        sha256: d.blob_sha256 as string,
        mail_from: d.mail_from as string,
        rcpts: JSON.parse(d.rcpts as string) as Array<{ address: string; orcpt?: string }>,
        client: d.client as string,
        helo: d.helo as string,
        tls: d.tls === 1,
        size: d.size as number,
        dedup: d.dedup as string,
      }));
      const attachments = (q.attachments.all(id) as Array<Record<string, unknown>>).map((a) => ({
        filename: a.filename as string | null,
        content_type: a.content_type as string,
        size: a.size as number,
        sha256: a.sha256 as string,
        content_id: a.content_id as string | null,
        inline: a.inline === 1,
      }));
      return {
        id,
        sha256: m.blob_sha256 as string,
        message_id: m.message_id as string | null,
        subject: m.subject as string,
        from: { address: m.from_addr as string, name: m.from_name as string },
        date: m.date as string | null,
        sort_date: new Date(m.sort_time as number).toISOString(),
        first_seen: m.first_seen as string,
        size: m.size as number,
        envelope_sender: m.envelope_sender as string | null,
        envelope_mode: m.envelope_mode as string,
        parse_status: m.parse_status as string,
        defects: JSON.parse(m.defects as string) as string[],
        in_reply_to: m.in_reply_to as string | null,
        references: JSON.parse(m.refs as string) as string[],
        recipients: q.recipients.all(id) as MessageDetail['recipients'],
        deliveries,
        attachments,
      };
    },
    isParticipant: (message, userId) => q.participant.get(message, userId) !== undefined,
    redactFor(message, userId) {
      const own = new Set(q.addresses.all(userId) as string[]);
      const mine = (address: string): boolean => own.has(address.toLowerCase());
      return {
        ...message,
        recipients: message.recipients.filter((r) => (r.kind !== 'bcc' && r.kind !== 'envelope') || mine(r.address)),
        // The RCPTs Postfix gave us are archive addresses that encode every original recipient.
        deliveries: message.deliveries.map((d) => ({ ...d, rcpts: [] })),
      };
    },
    blobOf(id) {
      return (q.blob.get(id) as { sha256: string; size: number } | undefined) ?? null;
    },
    stats() {
      const c = q.counts.get() as Omit<ArchiveStats, 'duplicates'>;
      return { ...c, duplicates: c.deliveries - c.messages };
    },
  };
}
