-- The queryable copy of the audit trail. The truth is the hash-chained <dataDir>/audit/*.jsonl;
-- this table is derived from it (fed after each commit, caught up on open from
-- meta.audit_indexed_seq) and is refilled after `spindle rebuild`.
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  prev TEXT NOT NULL,
  actor TEXT,
  role TEXT,
  source TEXT,
  action TEXT NOT NULL,
  target TEXT,
  outcome TEXT NOT NULL,
  details TEXT NOT NULL DEFAULT '{}'
);
-- seq is the rowid, and every index ends in the rowid, so "actor = ? ORDER BY seq DESC" walks
-- one index in order and stops at the page size.
CREATE INDEX audit_actor ON audit(actor);
CREATE INDEX audit_action ON audit(action);
CREATE INDEX audit_target ON audit(target);
CREATE INDEX audit_ts ON audit(ts);
