-- Accounts, sign-in sessions, and who may read which mail. Not derived (kept across rebuilds):
-- users, user_roles, user_addresses, sessions, tokens. Derived (rebuilt): participants.

-- A person or system that signs in. Local accounts have a scrypt password hash; IMAP accounts are
-- checked against the mail server at every sign-in and have none.
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  source TEXT NOT NULL CHECK (source IN ('local', 'imap')),
  password_hash TEXT,
  totp_secret TEXT,
  totp_last_step INTEGER,
  disabled_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_login_at TEXT
);

-- An account may hold several roles (an admin who is also an auditor).
CREATE TABLE user_roles (
  user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('auditor', 'admin', 'user')),
  PRIMARY KEY (user, role)
) WITHOUT ROWID;

-- The addresses whose mail a 'user' may read: their own and the aliases an admin assigns. Stored
-- lower-case, as the participants below.
CREATE TABLE user_addresses (
  user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  PRIMARY KEY (user, address)
) WITHOUT ROWID;
CREATE INDEX user_addresses_address ON user_addresses(address);

-- Browser sign-ins. Only the sha256 of the cookie value is stored.
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  user INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  source TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user);

-- Tokens gain the 'user' role, bound to an account. SQLite cannot change a CHECK in place.
CREATE TABLE tokens_v3 (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('auditor', 'admin', 'user')),
  hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at TEXT,
  user INTEGER REFERENCES users(id) ON DELETE CASCADE,
  CHECK (role <> 'user' OR user IS NOT NULL)
);
INSERT INTO tokens_v3 (id, name, role, hash, created_at, last_used_at, revoked_at)
  SELECT id, name, role, hash, created_at, last_used_at, revoked_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v3 RENAME TO tokens;

-- Every address that takes part in a message: From, Sender, To, Cc, Bcc and envelope recipients,
-- lower-case. A 'user' sees a message only if one of their addresses is here for it; the search
-- query joins on this table, so the restriction is part of the query, not a filter afterwards.
CREATE TABLE participants (
  message INTEGER NOT NULL REFERENCES messages(id),
  address TEXT NOT NULL,
  PRIMARY KEY (address, message)
) WITHOUT ROWID;
CREATE INDEX participants_message ON participants(message);

-- Messages archived before this migration: recipients and From (Sender headers are filled in by
-- `spindle rebuild`).
INSERT OR IGNORE INTO participants (message, address) SELECT message, lower(address) FROM recipients WHERE address <> '';
INSERT OR IGNORE INTO participants (message, address) SELECT id, lower(from_addr) FROM messages WHERE from_addr <> '';
