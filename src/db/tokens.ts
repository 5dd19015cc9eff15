import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './database.js';

import type { Role } from './users.js';

export { ROLES, type Role } from './users.js';

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  /** The account a 'user' token acts for (and is limited to); null for auditor/admin tokens. */
  user: number | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const PREFIX = 'spx_';
const hashOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export interface TokenStore {
  /** Returns the secret once; only its hash is stored. */
  create(opts: { role: Role; name: string; user?: number | null }): { token: string; info: TokenInfo };
  list(): TokenInfo[];
  revoke(id: string): boolean;
  /** The token's identity, or null for an unknown or revoked token. */
  authenticate(secret: string): TokenInfo | null;
}

/**
 * Bearer tokens: 32 random bytes, so a plain sha256 is a sufficient hash (there is nothing to
 * brute-force); lookup is by hash, and the final comparison is constant-time anyway.
 */
export function createTokenStore(db: Db, now: () => Date = () => new Date()): TokenStore {
  const q = {
    insert: db.prepare('INSERT INTO tokens (id, name, role, hash, created_at, user) VALUES (?, ?, ?, ?, ?, ?)'),
    list: db.prepare('SELECT id, name, role, user, created_at, last_used_at, revoked_at FROM tokens ORDER BY created_at'),
    revoke: db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    byHash: db.prepare('SELECT id, name, role, user, hash, created_at, last_used_at, revoked_at FROM tokens WHERE hash = ?'),
    touch: db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?'),
  };
  const lastTouched = new Map<string, number>();
  return {
    create({ role, name, user = null }) {
      if ((role === 'user') !== (user !== null)) throw new Error(role === 'user' ? 'a user token needs an account' : 'only user tokens belong to an account');
      const id = randomBytes(6).toString('hex');
      const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
      const created = now().toISOString();
      q.insert.run(id, name, role, hashOf(token), created, user);
      return { token, info: { id, name, role, user, created_at: created, last_used_at: null, revoked_at: null } };
    },
    list: () => q.list.all() as TokenInfo[],
    revoke: (id) => q.revoke.run(now().toISOString(), id).changes > 0,
    authenticate(secret) {
      if (!secret.startsWith(PREFIX) || secret.length > 200) return null;
      const hash = hashOf(secret);
      const row = q.byHash.get(hash) as (TokenInfo & { hash: string }) | undefined;
      if (!row || row.revoked_at) return null;
      if (!timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
      // Record use at most once a minute per token: no write on every request.
      const t = now().getTime();
      if ((lastTouched.get(row.id) ?? 0) < t - 60_000) {
        lastTouched.set(row.id, t);
        q.touch.run(new Date(t).toISOString(), row.id);
      }
      const { hash: _hash, ...info } = row;
      return info;
    },
  };
}
