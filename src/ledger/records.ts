/** The envelope of one SMTP transaction, as Postfix presented it. */
export interface LedgerEnvelope {
  /** MAIL FROM; '' for the null sender. */
  mailFrom: string;
  rcpts: Array<{ address: string; orcpt?: string }>;
  client: string;
  helo: string;
  /** SMTP session id, to find the delivery in the logs. */
  session: string;
  tls: boolean;
}

export interface DeliveryBody {
  type: 'delivery';
  /** sha256 of the original bytes = blob name. */
  blob: string;
  size: number;
  stored: number;
  env: LedgerEnvelope;
}

export type RetentionUnit = 'days' | 'months' | 'years';

/** How long a rule keeps mail; null in a rule means forever. */
export interface RetentionPeriod {
  count: number;
  unit: RetentionUnit;
}

/**
 * Which messages a retention rule or a legal hold covers. Every part given must match (AND);
 * an empty selector covers every message.
 */
export interface MailSelector {
  /** Addresses (alice@example.com) or domains (example.com), lower-case; any participant matches. Empty: anyone. */
  participants: string[];
  /** A search query (docs/search.md), or null. */
  query: string | null;
}

/** One retention rule. The rule with id 'default' has an empty selector and applies when no other rule matches. */
export interface RetentionRule {
  id: string;
  name: string;
  match: MailSelector;
  /** null: keep forever. */
  period: RetentionPeriod | null;
  /** What the period counts from: arrival (first delivery) or the message's Date header. */
  from: 'arrival' | 'date';
}

/** A rule added (or the default replaced) or removed; the whole rule either way, so the record explains itself. */
export interface RetentionRuleBody {
  type: 'retention-rule';
  action: 'add' | 'remove';
  rule: RetentionRule;
  actor: string;
}

/** What a legal hold covers: a selector plus an optional range of message dates. */
export interface HoldSelector extends MailSelector {
  /** Message date (YYYY-MM-DD, inclusive), or null. */
  since: string | null;
  /** Message date (YYYY-MM-DD, exclusive), or null. */
  until: string | null;
}

export interface HoldSpec {
  id: string;
  case: string;
  match: HoldSelector;
}

/** A hold placed (reason: why) or released (reason: why it ends). */
export interface HoldBody {
  type: 'hold';
  action: 'place' | 'release';
  hold: HoldSpec;
  reason: string;
  actor: string;
}

/** One message a purge removes, with what is needed to tell a purge from a loss later. */
export interface PurgedMessage {
  /** Spindle message id. */
  id: number;
  /** Every delivery of the message (ledger seq and blob) the purge removes. */
  deliveries: Array<{ seq: number; blob: string }>;
  /** Blobs to delete: no delivery outside this purge needs them. */
  blobs: string[];
  /** The message's own blob (of its first delivery), for the tombstone. */
  sha256: string;
  messageId: string | null;
  /** Date header (ISO) or null; arrival of the first delivery. */
  date: string | null;
  arrived: string;
  /** When its retention ended, and the rule that decided it. */
  expired: string;
  rule: string;
  /** Original bytes and bytes on disk of the blobs deleted. */
  bytes: number;
  storedBytes: number;
}

/**
 * One batch of a purge run, appended before anything is deleted (intent first, then the database,
 * then the blobs). A run with nothing to purge still appends one, so every run is on record.
 */
export interface PurgeBody {
  type: 'purge';
  run: string;
  /** The instant retention was evaluated at (ISO). */
  asOf: string;
  /** Ledger seq the database had applied when the batch was chosen. */
  basis: number;
  actor: string;
  /** Messages that would have gone but are under a hold (counted in this batch). */
  held: number;
  /** Last batch of the run. */
  final: boolean;
  messages: PurgedMessage[];
}

/** Every kind of record the ledger holds. */
export type LedgerBody = DeliveryBody | RetentionRuleBody | HoldBody | PurgeBody;

/** What the chain adds to every record of a chained log (the ledger, the audit trail). */
export interface ChainFields {
  seq: number;
  /** ISO-8601 time the record was committed. */
  ts: string;
  /** sha256 of the previous record's line; 64 zeros for the first. */
  prev: string;
}

export type Chained<B> = B & ChainFields;

export type LedgerRecord = Chained<LedgerBody>;
export type DeliveryRecord = Chained<DeliveryBody>;
/** Records that change what the archive holds without carrying mail: rules, holds, purges. */
export type StateRecord = Chained<RetentionRuleBody | HoldBody | PurgeBody>;

export const GENESIS = '0'.repeat(64);
