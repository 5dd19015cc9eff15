/** A mailbox as named in a header: address lower-cased where safe, display name decoded. */
export interface Address {
  address: string;
  name: string;
}

export interface AttachmentInfo {
  filename: string | null;
  contentType: string;
  size: number;
  /** sha256 (hex) of the decoded attachment content. */
  sha256: string;
  contentId: string | null;
  inline: boolean;
}

/**
 * What the indexer needs from one message, extracted in a worker thread.
 * Plain data only: it crosses a worker boundary via structured clone.
 */
export interface ParsedMail {
  /** Message-ID without angle brackets, or null when absent. */
  messageId: string | null;
  subject: string;
  /** Date header as ISO-8601 when it parsed to a plausible instant, else null. */
  date: string | null;
  from: Address[];
  sender: Address[];
  to: Address[];
  cc: Address[];
  bcc: Address[];
  replyTo: Address[];
  inReplyTo: string | null;
  references: string[];
  /** Body as plain text (HTML turned into text), capped for indexing. */
  text: string;
  attachments: AttachmentInfo[];
  /** sha256 (hex) of the raw bytes after the header block (the body), for Message-ID + body dedup. */
  bodySha256: string;
  /** Values of selected raw headers by lower-case name (e.g. x-original-to), decoded, in order. */
  headers: Record<string, string[]>;
  /** Stable defect codes, e.g. 'parse-error', 'no-header-block', 'missing-final-boundary'. */
  defects: string[];
  /** 'ok' when mailparser read the message; 'partial' when only a fallback scan could. */
  status: 'ok' | 'partial';
}
