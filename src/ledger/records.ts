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

/** Every kind of record the ledger holds. Later kinds (purge, hold, …) join this union. */
export type LedgerBody = DeliveryBody;

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

export const GENESIS = '0'.repeat(64);
