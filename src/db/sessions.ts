import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './database.js';

export interface SessionLimits {
  /** A session unused for this long ends. */
  idleMs: number;
  /** A session ends this long after sign-in, however active. */
  absoluteMs: number;
}

export interface Session {
  userId: number;
  /** Sent back by the browser in X-CSRF-Token on every request that changes state. */
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

export interface SessionStore {
  /** Returns the cookie value once; only its sha256 is stored. */
  create(userId: number, source: string): { token: string; session: Session };
  /** The live session for a cookie value, or null (unknown, idle too long, or past its absolute end). */
  get(token: string): Session | null;
  delete(token: string): void;
  deleteForUser(userId: number): number;
  /** Removes ended sessions; returns how many. */
  sweep(): number;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');
/** Writes of last_seen_at are coalesced to this granularity: no write on every request. */
const TOUCH_EVERY_MS = 30_000;

/**
 * Browser sessions. The cookie value is 32 random bytes, so a plain sha256 is enough to keep a
 * database copy from being usable as cookies; lookup is by that hash.
 */
export function createSessionStore(db: Db, limits: SessionLimits, now: () => number = Date.now): SessionStore {
  const q = {
    insert: db.prepare('INSERT INTO sessions (id_hash, user, csrf, created_at, last_seen_at, expires_at, source) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    get: db.prepare('SELECT user AS userId, csrf, created_at AS createdAt, last_seen_at AS lastSeenAt, expires_at AS expiresAt FROM sessions WHERE id_hash = ?'),
    touch: db.prepare('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?'),
    delete: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
    deleteForUser: db.prepare('DELETE FROM sessions WHERE user = ?'),
    sweep: db.prepare('DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?'),
  };
  return {
    create(userId, source) {
      const token = randomBytes(32).toString('base64url');
      const t = now();
      const session: Session = { userId, csrf: randomBytes(24).toString('base64url'), createdAt: t, expiresAt: t + limits.absoluteMs };
      q.insert.run(hashOf(token), userId, session.csrf, t, t, session.expiresAt, source);
      return { token, session };
    },
    get(token) {
      if (token.length === 0 || token.length > 100) return null;
      const id = hashOf(token);
      const row = q.get.get(id) as (Session & { lastSeenAt: number }) | undefined;
      if (!row) return null;
      const t = now();
      if (t >= row.expiresAt || t - row.lastSeenAt >= limits.idleMs) {
        q.delete.run(id);
        return null;
      }
      if (t - row.lastSeenAt >= TOUCH_EVERY_MS) q.touch.run(t, id);
      return { userId: row.userId, csrf: row.csrf, createdAt: row.createdAt, expiresAt: row.expiresAt };
    },
    delete(token) {
      q.delete.run(hashOf(token));
    },
    deleteForUser: (userId) => q.deleteForUser.run(userId).changes,
    sweep() {
      const t = now();
      return q.sweep.run(t, t - limits.idleMs).changes;
    },
  };
}
