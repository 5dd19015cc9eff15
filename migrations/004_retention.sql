-- Retention rules, legal holds, and what purges removed. All of it is derived from the ledger
-- (records of type retention-rule, hold and purge), applied by the indexer in ledger order like
-- deliveries, so `spindle rebuild` recreates it and never brings purged mail back.

-- The rules in force. id 'default' (empty selector) applies when no other rule matches; without
-- it, mail no rule matches is kept forever.
CREATE TABLE retention_rules (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  -- JSON array of lower-case addresses and domains; any participant matches. '[]': anyone.
  participants TEXT NOT NULL DEFAULT '[]',
  query TEXT,
  -- NULL: keep forever.
  period_count INTEGER,
  period_unit TEXT CHECK (period_unit IN ('days', 'months', 'years')),
  count_from TEXT NOT NULL CHECK (count_from IN ('arrival', 'date')),
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Legal holds, placed and released. A hold is evaluated when a purge runs, so it covers mail that
-- arrives after it was placed.
CREATE TABLE holds (
  id TEXT PRIMARY KEY,
  case_name TEXT NOT NULL,
  reason TEXT NOT NULL,
  participants TEXT NOT NULL DEFAULT '[]',
  query TEXT,
  -- Message dates (YYYY-MM-DD): since inclusive, until exclusive; NULL: open.
  since TEXT,
  until TEXT,
  placed_by TEXT NOT NULL,
  placed_at TEXT NOT NULL,
  place_seq INTEGER NOT NULL,
  released_by TEXT,
  released_at TEXT,
  release_reason TEXT,
  release_seq INTEGER
) WITHOUT ROWID;

-- One row per purged message: what it was, which rule ended it, and which purge removed it. The
-- id is never given to another message (the writer skips tombstoned ids).
CREATE TABLE tombstones (
  id INTEGER PRIMARY KEY,
  sha256 TEXT NOT NULL,
  message_id TEXT,
  date TEXT,
  arrived TEXT NOT NULL,
  expired TEXT NOT NULL,
  rule TEXT NOT NULL,
  purged_at TEXT NOT NULL,
  run TEXT NOT NULL,
  -- The ledger seq of the purge record.
  seq INTEGER NOT NULL,
  -- JSON [{seq, blob}]: the deliveries removed.
  deliveries TEXT NOT NULL
);
CREATE INDEX tombstones_run ON tombstones(run);
CREATE INDEX tombstones_message_id ON tombstones(message_id);

-- Blobs a ledgered purge deletes. The deletion itself is the last step, after the ledger and the
-- database; a row stays 'pending' until the file is gone ('deleted') or new mail needs the bytes
-- again ('kept'), so an interrupted purge is finished by the next run or start.
CREATE TABLE purge_blobs (
  sha256 TEXT PRIMARY KEY,
  run TEXT NOT NULL,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'deleted', 'kept')),
  done_at TEXT
) WITHOUT ROWID;
CREATE INDEX purge_blobs_pending ON purge_blobs(state) WHERE state = 'pending';

-- One row per purge run (one or more purge records), for the run list and the dashboard.
CREATE TABLE purge_runs (
  run TEXT PRIMARY KEY,
  as_of TEXT NOT NULL,
  actor TEXT NOT NULL,
  started_at TEXT NOT NULL,
  -- Commit time of the run's final record; NULL while running or if it was interrupted.
  finished_at TEXT,
  batches INTEGER NOT NULL DEFAULT 0,
  messages INTEGER NOT NULL DEFAULT 0,
  -- Chosen, but a delivery joined the message before the record was applied: left for the next run.
  skipped INTEGER NOT NULL DEFAULT 0,
  held INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  stored_bytes INTEGER NOT NULL DEFAULT 0,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL
) WITHOUT ROWID;
