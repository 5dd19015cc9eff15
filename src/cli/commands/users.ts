import fs from 'node:fs';
import { hashPassword, generatePassword, PasswordPolicyError } from '../../auth/password.js';
import { generateSecret, otpauthUri } from '../../auth/totp.js';
import type { Config } from '../../config/settings.js';
import { openDatabase, type Db } from '../../db/database.js';
import { createSessionStore } from '../../db/sessions.js';
import { createUserStore, UserError, type UserInfo, type UserStore } from '../../db/users.js';
import { dataPaths } from '../../runtime/paths.js';
import { recordCliAudit } from '../cli-audit.js';
import { CliError } from '../errors.js';

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

/** Account commands may come before the first start: the database is created if needed. */
function withUsers<T>(config: Config, fn: (users: UserStore, db: Db) => T): T {
  const db = openDatabase({ file: dataPaths(config.dataDir).db });
  try {
    return fn(createUserStore(db), db);
  } catch (err) {
    if (err instanceof UserError) throw new CliError(err.message, err.code === 'no_such_user' || err.code === 'user_exists' ? 1 : 2);
    if (err instanceof PasswordPolicyError) throw new CliError(err.message, 2);
    throw err;
  } finally {
    db.close();
  }
}

function mustGet(users: UserStore, name: string): UserInfo {
  const u = users.get(name);
  if (!u) throw new CliError(`no account ${name} (see spindle user list)`);
  return u;
}

/** The new password: from stdin (first line) with --password-stdin, else a random one printed once. */
async function newPassword(fromStdin: boolean | undefined): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: generatePassword(), generated: true };
  const text = fs.readFileSync(0, 'utf8');
  const password = text.split(/\r?\n/)[0] ?? '';
  if (!password) throw new CliError('--password-stdin: no password on standard input', 2);
  return { password, generated: false };
}

const describe = (u: UserInfo): string =>
  `${u.name}  [${u.roles.join(', ')}]  ${u.source}${u.disabled ? '  DISABLED' : ''}${u.totp ? '  totp' : ''}` +
  (u.addresses.length ? `\n    addresses: ${u.addresses.join(', ')}` : '');

export async function userAdd(config: Config, name: string, opts: { role?: string[]; address?: string[]; passwordStdin?: boolean }): Promise<void> {
  if (!opts.role?.length) throw new CliError('--role is required: auditor, admin or user (repeat it for several)', 2);
  const { password, generated } = await newPassword(opts.passwordStdin);
  const hash = await hashPassword(password).catch((err: unknown) => {
    throw err instanceof PasswordPolicyError ? new CliError(err.message, 2) : err;
  });
  const user = withUsers(config, (users) => users.create({ name, source: 'local', roles: opts.role!, addresses: opts.address ?? [], passwordHash: hash }));
  await recordCliAudit(config, { action: 'user.create', target: user.name, details: { roles: user.roles.join(','), addresses: user.addresses.join(',') } });
  out(`Created account ${describe(user)}`);
  if (generated) out(`\nIts password, shown only this once:\n\n  ${password}\n`);
}

export function userList(config: Config, opts: { json?: boolean }): void {
  const list = withUsers(config, (users) => users.list());
  if (opts.json) return out(JSON.stringify(list, null, 2));
  if (list.length === 0) return out('No accounts. Create one with: spindle user add NAME --role auditor');
  for (const u of list) out(`${describe(u)}\n    last sign-in ${u.last_login_at ?? 'never'}`);
}

export async function userPasswd(config: Config, name: string, opts: { passwordStdin?: boolean }): Promise<void> {
  const { password, generated } = await newPassword(opts.passwordStdin);
  const hash = await hashPassword(password).catch((err: unknown) => {
    throw err instanceof PasswordPolicyError ? new CliError(err.message, 2) : err;
  });
  const user = withUsers(config, (users, db) => {
    const u = mustGet(users, name);
    if (u.source !== 'local') throw new CliError(`${u.name} signs in with the mail server's password (IMAP); change it there`, 2);
    users.setPassword(u.id, hash);
    // A new password ends every session signed in with the old one.
    createSessionStore(db, { idleMs: 0, absoluteMs: 0 }).deleteForUser(u.id);
    return u;
  });
  await recordCliAudit(config, { action: 'user.update', target: user.name, details: { change: 'password' } });
  out(`Password of ${user.name} changed; its sessions were ended.`);
  if (generated) out(`\nThe new password, shown only this once:\n\n  ${password}\n`);
}

export async function userDisable(config: Config, name: string, disabled: boolean): Promise<void> {
  const user = withUsers(config, (users, db) => {
    const u = users.setDisabled(mustGet(users, name).id, disabled);
    if (disabled) createSessionStore(db, { idleMs: 0, absoluteMs: 0 }).deleteForUser(u.id);
    return u;
  });
  await recordCliAudit(config, { action: 'user.update', target: user.name, details: { change: disabled ? 'disable' : 'enable' } });
  out(`${user.name} is ${disabled ? 'disabled (its sessions were ended)' : 'enabled'}.`);
}

export async function userDelete(config: Config, name: string): Promise<void> {
  const user = withUsers(config, (users) => {
    const u = mustGet(users, name);
    users.delete(u.id);
    return u;
  });
  await recordCliAudit(config, { action: 'user.delete', target: user.name, details: { roles: user.roles.join(',') } });
  out(`Deleted account ${user.name}.`);
}

export async function userRoles(config: Config, name: string, roles: string[]): Promise<void> {
  const user = withUsers(config, (users) => users.setRoles(mustGet(users, name).id, roles));
  await recordCliAudit(config, { action: 'user.update', target: user.name, details: { change: 'roles', roles: user.roles.join(',') } });
  out(`Roles of ${describe(user)}`);
}

export async function userAddresses(config: Config, name: string, opts: { add?: string[]; remove?: string[] }): Promise<void> {
  const user = withUsers(config, (users) => {
    let u = mustGet(users, name);
    if (opts.add?.length) u = users.addAddresses(u.id, opts.add);
    if (opts.remove?.length) u = users.removeAddresses(u.id, opts.remove);
    return u;
  });
  if (opts.add?.length || opts.remove?.length) {
    await recordCliAudit(config, { action: 'user.update', target: user.name, details: { change: 'addresses', added: (opts.add ?? []).join(','), removed: (opts.remove ?? []).join(',') } });
  }
  out(user.addresses.length ? `${user.name} reads the mail of: ${user.addresses.join(', ')}` : `${user.name} has no addresses.`);
}

export async function userTotp(config: Config, name: string, opts: { disable?: boolean }): Promise<void> {
  const secret = opts.disable ? null : generateSecret();
  const user = withUsers(config, (users) => {
    const u = mustGet(users, name);
    if (secret && u.source !== 'local') throw new CliError('TOTP is for local accounts (auditor, admin)', 2);
    users.setTotp(u.id, secret);
    return u;
  });
  await recordCliAudit(config, { action: 'user.update', target: user.name, details: { change: secret ? 'totp_enable' : 'totp_disable' } });
  if (!secret) return out(`TOTP is off for ${user.name}.`);
  out(`TOTP is on for ${user.name}. Add it to an authenticator app (shown only this once):\n\n  secret: ${secret}\n  ${otpauthUri({ account: user.name, secret })}\n\nFrom now on, signing in asks for the 6-digit code.`);
}
