-- Spindle schema, version 1. Everything here except `tokens` is derived from the ledger and the
-- blobs and is rebuilt by `spindle rebuild`.

-- One logical message: byte-identical deliveries, and deliveries with the same Message-ID and
-- the same body, share a row. id is date-derived (unix seconds * 2^20 + tiebreak) and is also the
-- FTS rowid, so "newest first" is a walk down the rowid and date ranges are rowid ranges.
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  blob_sha256 TEXT NOT NULL,
  message_id TEXT,
  body_sha256 TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  from_addr TEXT NOT NULL DEFAULT '',
  from_name TEXT NOT NULL DEFAULT '',
  date TEXT,
  sort_time INTEGER NOT NULL,
  first_seen TEXT NOT NULL,
  size INTEGER NOT NULL,
  attachment_count INTEGER NOT NULL DEFAULT 0,
  in_reply_to TEXT,
  refs TEXT NOT NULL DEFAULT '[]',
  envelope_sender TEXT,
  envelope_mode TEXT NOT NULL,
  parse_status TEXT NOT NULL,
  defects TEXT NOT NULL DEFAULT '[]',
  first_seq INTEGER NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id, body_sha256);

-- Every SMTP transaction Postfix completed with us; seq is the ledger record.
CREATE TABLE deliveries (
  seq INTEGER PRIMARY KEY,
  message INTEGER NOT NULL REFERENCES messages(id),
  blob_sha256 TEXT NOT NULL,
  received_at TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  rcpts TEXT NOT NULL,
  client TEXT NOT NULL,
  helo TEXT NOT NULL,
  session TEXT NOT NULL,
  tls INTEGER NOT NULL,
  size INTEGER NOT NULL,
  -- 'new': first of its message; 'same-bytes': identical bytes seen before;
  -- 'same-content': same Message-ID and body, different header block.
  dedup TEXT NOT NULL
);
CREATE INDEX deliveries_blob ON deliveries(blob_sha256);
CREATE INDEX deliveries_message ON deliveries(message);

-- Distinct stored blobs (stored bytes are counted once however many deliveries share them).
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  stored_size INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE recipients (
  message INTEGER NOT NULL REFERENCES messages(id),
  address TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL CHECK (kind IN ('to', 'cc', 'bcc', 'envelope')),
  PRIMARY KEY (message, address, kind)
) WITHOUT ROWID;
CREATE INDEX recipients_address ON recipients(address);

CREATE TABLE attachments (
  message INTEGER NOT NULL REFERENCES messages(id),
  idx INTEGER NOT NULL,
  filename TEXT,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  content_id TEXT,
  inline INTEGER NOT NULL,
  PRIMARY KEY (message, idx)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE message_fts USING fts5(
  subject, sender, rcpt_to, rcpt_cc, rcpt_bcc, rcpt_env, body, attachments, flags,
  tokenize = 'unicode61 remove_diacritics 2'
);

-- Small key/value state: index position (last ledger seq applied), counters.
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- API bearer tokens, stored as sha256 of the secret. Not derived: kept across rebuilds.
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('auditor', 'admin')),
  hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at TEXT
);
