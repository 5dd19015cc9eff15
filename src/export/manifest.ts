import type { Db } from '../db/database.js';
import type { ByteSink } from './byte-sink.js';
import type { SelectionSummary } from './selection.js';

/** One line of the manifest: what an exported message is and how to check it. */
export interface ManifestEntry {
  id: number;
  /** sha256 of the exported bytes, equal to the archived blob's name (checked while exporting). */
  sha256: string;
  message_id: string | null;
  /** ISO 8601 UTC: the Date header when plausible, else the arrival time (the id's date). */
  date: string;
  from: string;
  /** To recipients, comma-separated. */
  to: string;
  subject: string;
  size: number;
  /** Name of the .eml in a zip or directory export; absent for mbox. */
  file?: string;
}

/** A message on its way out: its manifest entry and what the mbox `From ` line needs. */
export interface ExportItem {
  entry: ManifestEntry;
  sortTime: number;
  firstSeen: string;
  envelopeSender: string | null;
  /** Bytes of the blob on disk (gzip), from the blobs table; 0 when unknown. */
  stored: number;
}

interface MessageRow {
  id: number; blob_sha256: string; message_id: string | null; sort_time: number; from_addr: string; from_name: string;
  subject: string; size: number; envelope_sender: string | null; first_seen: string; stored_size: number | null;
}

const person = (address: string, name: string): string => (name ? `${name} <${address}>` : address);

/** Looks up a page of messages in two queries; returns them in the order of `ids`. */
export function createItemLookup(db: Db): (ids: number[]) => ExportItem[] {
  // Raw rows (arrays): a third of the cost of row objects for a page of 500.
  const messages = db.prepare(`SELECT m.id, m.blob_sha256, m.message_id, m.sort_time, m.from_addr, m.from_name, m.subject, m.size,
      m.envelope_sender, m.first_seen, b.stored_size
    FROM messages m LEFT JOIN blobs b ON b.sha256 = m.blob_sha256 WHERE m.id IN (SELECT value FROM json_each(?))`).raw();
  const to = db.prepare(`SELECT message, address, name FROM recipients WHERE kind = 'to' AND message IN (SELECT value FROM json_each(?))
    ORDER BY message, address`).raw();
  return (ids) => {
    const json = JSON.stringify(ids);
    const rows = new Map<number, unknown[]>();
    for (const r of messages.all(json) as unknown[][]) rows.set(r[0] as number, r);
    const recipients = new Map<number, string>();
    for (const [message, address, name] of to.all(json) as Array<[number, string, string]>) {
      const before = recipients.get(message);
      recipients.set(message, before === undefined ? person(address, name) : `${before}, ${person(address, name)}`);
    }
    return ids.map((id): ExportItem => {
      const r = rows.get(id);
      if (!r) throw new Error(`message ${id} disappeared during the export`);
      const m = {
        id: r[0], blob_sha256: r[1], message_id: r[2], sort_time: r[3], from_addr: r[4], from_name: r[5], subject: r[6], size: r[7],
        envelope_sender: r[8], first_seen: r[9], stored_size: r[10],
      } as MessageRow;
      return {
        entry: {
          id: m.id, sha256: m.blob_sha256, message_id: m.message_id, date: new Date(m.sort_time).toISOString(),
          from: person(m.from_addr, m.from_name), to: recipients.get(id) ?? '', subject: m.subject, size: m.size,
        },
        sortTime: m.sort_time,
        firstSeen: m.first_seen,
        envelopeSender: m.envelope_sender,
        stored: m.stored_size ?? 0,
      };
    });
  };
}

const COLUMNS = ['id', 'sha256', 'message_id', 'date', 'from', 'to', 'subject', 'size'] as const;

/**
 * One CSV field (RFC 4180). A cell that starts like a formula is prefixed with `'` so that a
 * spreadsheet shows a subject such as `=HYPERLINK(…)` instead of running it; manifest.json keeps
 * every value exactly.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const c = value.charCodeAt(0);
  // = + - @ tab CR
  const s = c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13 ? `'${value}` : value;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export interface ManifestHeader {
  format: 'mbox' | 'zip' | 'dir';
  createdAt: string;
  selection: SelectionSummary;
  /** The count announced before the export started. */
  count: number;
}

export interface ManifestWriter {
  /** Undefined when the entry was only buffered (see ByteSink.write). */
  add(entry: ManifestEntry): Promise<void> | undefined;
  /** Ends both files with the totals actually exported. */
  close(totals: { exported: number; bytes: number }): Promise<void>;
  destroy(): Promise<void>;
  /** sha256 of manifest.json, after close(). */
  jsonDigest(): string;
}

/**
 * Writes manifest.csv and manifest.json as the export goes, one entry at a time: neither is ever
 * held in memory. The JSON is one object, with one message per line inside `messages` so that it
 * can also be read with line tools.
 */
export function createManifestWriter(out: { csv: ByteSink; json: ByteSink }, header: ManifestHeader): ManifestWriter {
  const withFile = header.format !== 'mbox';
  const columns: readonly string[] = withFile ? [...COLUMNS, 'file'] : COLUMNS;
  let started = false;
  let first = true;
  /** The two files' first bytes, the first time anything is written. */
  const heads = (): { csv: string; json: string } => {
    if (started) return { csv: '', json: '' };
    started = true;
    const head = JSON.stringify({ spindle_export: 1, format: header.format, created_at: header.createdAt, selection: header.selection, count: header.count }, null, 2);
    return { csv: `${columns.join(',')}\r\n`, json: `${head.slice(0, -2)},\n  "messages": [` };
  };
  const both = (csv: string, json: string): Promise<void> | undefined => {
    const a = out.csv.writeText(csv);
    const b = out.json.writeText(json);
    return a && b ? Promise.all([a, b]).then(() => undefined) : (a ?? b);
  };
  const str = (s: string | null | undefined) => JSON.stringify(s ?? null);
  return {
    add(e) {
      const { csv, json } = heads();
      const values = [e.id, e.sha256, e.message_id, e.date, e.from, e.to, e.subject, e.size, ...(withFile ? [e.file ?? null] : [])];
      // Keys in column order; only free text needs JSON escaping (ids, hashes and dates never do).
      const line = `{"id":${e.id},"sha256":"${e.sha256}","message_id":${str(e.message_id)},"date":"${e.date}","from":${str(e.from)},` +
        `"to":${str(e.to)},"subject":${str(e.subject)},"size":${e.size}${withFile ? `,"file":${str(e.file)}` : ''}}`;
      const text = { csv: `${csv}${values.map(csvField).join(',')}\r\n`, json: `${json}${first ? '\n' : ',\n'}    ${line}` };
      first = false;
      return both(text.csv, text.json);
    },
    async close(totals) {
      const { csv, json } = heads();
      await both(csv, `${json}${first ? '' : '\n  '}],\n  "exported": ${totals.exported},\n  "bytes": ${totals.bytes}\n}\n`);
      await out.csv.close();
      await out.json.close();
    },
    async destroy() {
      await out.csv.destroy();
      await out.json.destroy();
    },
    jsonDigest: () => out.json.digest(),
  };
}
