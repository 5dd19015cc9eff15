import type { Db } from './database.js';

export type Role = 'auditor' | 'admin' | 'user';
export const ROLES: readonly Role[] = ['auditor', 'admin', 'user'];
export type UserSource = 'local' | 'imap';

export interface UserInfo {
  id: number;
  name: string;
  source: UserSource;
  roles: Role[];
  /** Lower-case addresses whose mail the account may read with role 'user'. */
  addresses: string[];
  disabled: boolean;
  totp: boolean;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

/** What sign-in needs besides the public view; never leaves the server. */
export interface UserSecrets {
  passwordHash: string | null;
  totpSecret: string | null;
  totpLastStep: number | null;
}

export class UserError extends Error {
  constructor(readonly code: 'user_exists' | 'no_such_user' | 'bad_name' | 'bad_address' | 'bad_role', message: string) {
    super(message);
  }
}

/** Local names: letters, digits and . _ - + @ (so an address works as a name too). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
/** Deliberately plain: addresses here are compared, never sent mail to. */
const ADDRESS = /^[^\s@<>()",;:\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$/;

export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  if (!ADDRESS.test(a)) throw new UserError('bad_address', `not an email address: ${JSON.stringify(address)}`);
  return a;
}

export function checkRoles(roles: readonly string[]): Role[] {
  if (roles.length === 0) throw new UserError('bad_role', 'an account needs at least one role');
  for (const r of roles) if (!ROLES.includes(r as Role)) throw new UserError('bad_role', `unknown role ${JSON.stringify(r)} (auditor, admin or user)`);
  return [...new Set(roles as Role[])].sort();
}

export interface UserStore {
  create(opts: { name: string; source: UserSource; roles: readonly string[]; addresses?: readonly string[]; passwordHash?: string | null }): UserInfo;
  /** By name, case-insensitively. */
  get(name: string): UserInfo | null;
  byId(id: number): UserInfo | null;
  secrets(id: number): UserSecrets;
  list(): UserInfo[];
  setPassword(id: number, hash: string): void;
  setRoles(id: number, roles: readonly string[]): UserInfo;
  addAddresses(id: number, addresses: readonly string[]): UserInfo;
  removeAddresses(id: number, addresses: readonly string[]): UserInfo;
  setDisabled(id: number, disabled: boolean): UserInfo;
  setTotp(id: number, secret: string | null): void;
  /** Records the TOTP step just used, so the same code cannot be used twice. */
  useTotpStep(id: number, step: number): void;
  touchLogin(id: number): void;
  delete(id: number): boolean;
  /** Some account (enabled or not) holds the admin role: no first-start admin is needed. */
  hasAdmin(): boolean;
}

interface UserRow {
  id: number;
  name: string;
  source: UserSource;
  disabled_at: string | null;
  totp_secret: string | null;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export function createUserStore(db: Db, now: () => Date = () => new Date()): UserStore {
  const cols = 'id, name, source, disabled_at, totp_secret, created_at, updated_at, last_login_at';
  const q = {
    insert: db.prepare('INSERT INTO users (name, source, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)'),
    byName: db.prepare(`SELECT ${cols} FROM users WHERE name = ?`),
    byId: db.prepare(`SELECT ${cols} FROM users WHERE id = ?`),
    all: db.prepare(`SELECT ${cols} FROM users ORDER BY name`),
    roles: db.prepare('SELECT role FROM user_roles WHERE user = ? ORDER BY role').pluck(),
    addresses: db.prepare('SELECT address FROM user_addresses WHERE user = ? ORDER BY address').pluck(),
    secrets: db.prepare('SELECT password_hash AS passwordHash, totp_secret AS totpSecret, totp_last_step AS totpLastStep FROM users WHERE id = ?'),
    addRole: db.prepare('INSERT OR IGNORE INTO user_roles (user, role) VALUES (?, ?)'),
    clearRoles: db.prepare('DELETE FROM user_roles WHERE user = ?'),
    addAddress: db.prepare('INSERT OR IGNORE INTO user_addresses (user, address) VALUES (?, ?)'),
    removeAddress: db.prepare('DELETE FROM user_addresses WHERE user = ? AND address = ?'),
    setPassword: db.prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?'),
    setDisabled: db.prepare('UPDATE users SET disabled_at = ?, updated_at = ? WHERE id = ?'),
    setTotp: db.prepare('UPDATE users SET totp_secret = ?, totp_last_step = NULL, updated_at = ? WHERE id = ?'),
    useTotpStep: db.prepare('UPDATE users SET totp_last_step = ? WHERE id = ?'),
    touchLogin: db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?'),
    touch: db.prepare('UPDATE users SET updated_at = ? WHERE id = ?'),
    delete: db.prepare('DELETE FROM users WHERE id = ?'),
    hasAdmin: db.prepare("SELECT 1 FROM user_roles WHERE role = 'admin' LIMIT 1").pluck(),
  };
  const iso = (): string => now().toISOString();

  function view(row: UserRow | undefined): UserInfo | null {
    if (!row) return null;
    return {
      id: row.id, name: row.name, source: row.source,
      roles: q.roles.all(row.id) as Role[], addresses: q.addresses.all(row.id) as string[],
      disabled: row.disabled_at !== null, totp: row.totp_secret !== null,
      created_at: row.created_at, updated_at: row.updated_at, last_login_at: row.last_login_at,
    };
  }
  function mustGet(id: number): UserInfo {
    const u = view(q.byId.get(id) as UserRow | undefined);
    if (!u) throw new UserError('no_such_user', `no account with id ${id}`);
    return u;
  }

  const create = db.transaction((opts: Parameters<UserStore['create']>[0]): UserInfo => {
    if (!NAME.test(opts.name)) throw new UserError('bad_name', `account names are 1-128 letters, digits and . _ - + @, starting with a letter or digit: ${JSON.stringify(opts.name)}`);
    if (q.byName.get(opts.name)) throw new UserError('user_exists', `account ${opts.name} exists already`);
    const roles = checkRoles(opts.roles);
    const addresses = (opts.addresses ?? []).map(normalizeAddress);
    const t = iso();
    const id = Number(q.insert.run(opts.name, opts.source, opts.passwordHash ?? null, t, t).lastInsertRowid);
    for (const r of roles) q.addRole.run(id, r);
    for (const a of addresses) q.addAddress.run(id, a);
    return mustGet(id);
  });

  const setRoles = db.transaction((id: number, roles: readonly string[]): UserInfo => {
    const checked = checkRoles(roles);
    mustGet(id);
    q.clearRoles.run(id);
    for (const r of checked) q.addRole.run(id, r);
    q.touch.run(iso(), id);
    return mustGet(id);
  });

  const changeAddresses = db.transaction((id: number, addresses: readonly string[], add: boolean): UserInfo => {
    mustGet(id);
    for (const a of addresses.map(normalizeAddress)) (add ? q.addAddress : q.removeAddress).run(id, a);
    q.touch.run(iso(), id);
    return mustGet(id);
  });

  return {
    create,
    get: (name) => view(q.byName.get(name) as UserRow | undefined),
    byId: (id) => view(q.byId.get(id) as UserRow | undefined),
    secrets(id) {
      const s = q.secrets.get(id) as UserSecrets | undefined;
      if (!s) throw new UserError('no_such_user', `no account with id ${id}`);
      return s;
    },
    list: () => (q.all.all() as UserRow[]).map((r) => view(r)!),
    setPassword(id, hash) {
      if (q.setPassword.run(hash, iso(), id).changes === 0) throw new UserError('no_such_user', `no account with id ${id}`);
    },
    setRoles,
    addAddresses: (id, addresses) => changeAddresses(id, addresses, true),
    removeAddresses: (id, addresses) => changeAddresses(id, addresses, false),
    setDisabled(id, disabled) {
      const t = iso();
      if (q.setDisabled.run(disabled ? t : null, t, id).changes === 0) throw new UserError('no_such_user', `no account with id ${id}`);
      return mustGet(id);
    },
    setTotp(id, secret) {
      if (q.setTotp.run(secret, iso(), id).changes === 0) throw new UserError('no_such_user', `no account with id ${id}`);
    },
    useTotpStep(id, step) {
      q.useTotpStep.run(step, id);
    },
    touchLogin(id) {
      q.touchLogin.run(iso(), id);
    },
    delete: (id) => q.delete.run(id).changes > 0,
    hasAdmin: () => q.hasAdmin.get() !== undefined,
  };
}
