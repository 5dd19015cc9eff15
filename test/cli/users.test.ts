import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startServerProcess, type ServerProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

let server: ServerProcess | null = null;
afterEach(() => {
  server?.child.kill('SIGTERM');
  server = null;
});

const auditActions = async (env: Record<string, string>) => {
  const r = await runCli(['audit', '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { action: string; actor: string; target: string; details: Record<string, unknown> });
};

const until = async <T>(fn: () => Promise<T | null>, ms = 15_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('spindle user', () => {
  it('adds, lists, changes and deletes accounts, each change on the audit trail', async () => {
    const env = { SPINDLE_DATA_DIR: tempDir() };
    const add = await runCli(['user', 'add', 'olivia', '--role', 'auditor', '--role', 'admin', '--password-stdin'], env, 'a long passphrase\n');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/Created account olivia {2}\[admin, auditor\]/);
    expect(add.stdout).not.toMatch(/password, shown/);
    const bob = await runCli(['user', 'add', 'bob', '--role', 'user', '--address', 'bob@example.com,team@example.com'], env);
    expect(bob.code, bob.stderr).toBe(0);
    expect(bob.stdout).toMatch(/Its password, shown only this once:\n\n {2}\S{20}\n/);

    const dup = await runCli(['user', 'add', 'Olivia', '--role', 'auditor'], env);
    expect([dup.code, dup.stderr.trim()]).toEqual([1, 'spindle: account Olivia exists already']);
    const badRole = await runCli(['user', 'add', 'x', '--role', 'root'], env);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toMatch(/unknown role "root"/);
    const badAddr = await runCli(['user', 'addresses', 'bob', '--add', 'not an address'], env);
    expect(badAddr.code).toBe(2);

    expect((await runCli(['user', 'addresses', 'bob', '--remove', 'team@example.com'], env)).stdout).toMatch(/bob reads the mail of: bob@example.com\n/);
    const totp = await runCli(['user', 'totp', 'olivia'], env);
    expect(totp.stdout).toMatch(/otpauth:\/\/totp\/Spindle:olivia\?secret=[A-Z2-7]{32}/);
    expect((await runCli(['user', 'disable', 'bob'], env)).code).toBe(0);
    const list = JSON.parse((await runCli(['user', 'list', '--json'], env)).stdout) as Array<{ name: string; roles: string[]; disabled: boolean; totp: boolean; addresses: string[] }>;
    expect(list.map((u) => [u.name, u.roles.join('+'), u.disabled, u.totp, u.addresses.join(',')])).toEqual([
      ['bob', 'user', true, false, 'bob@example.com'],
      ['olivia', 'admin+auditor', false, true, ''],
    ]);
    expect((await runCli(['user', 'delete', 'bob'], env)).code).toBe(0);
    expect((await runCli(['user', 'delete', 'bob'], env)).code).toBe(1);

    const entries = await auditActions(env);
    expect(entries.map((e) => `${e.action} ${e.target}`).reverse()).toEqual([
      'user.create olivia', 'user.create bob', 'user.update bob', 'user.update olivia', 'user.update bob', 'user.delete bob',
    ]);
    expect(entries.every((e) => e.actor.startsWith('cli:'))).toBe(true);
    expect(JSON.stringify(entries)).not.toContain('a long passphrase');

    // Accounts are not derived data: a rebuilt database keeps them (and the audit index).
    const rebuilt = await runCli(['rebuild'], env);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/1 accounts and 0 API tokens kept/);
    const after = JSON.parse((await runCli(['user', 'list', '--json'], env)).stdout) as Array<{ name: string; totp: boolean }>;
    expect(after.map((u) => [u.name, u.totp])).toEqual([['olivia', true]]);
    expect((await auditActions(env)).length).toBe(entries.length);
  }, 90_000);

  it('beside a running server: changes are spooled and the server puts them on the trail; the first start creates an admin once', async () => {
    const dataDir = tempDir();
    const env = { SPINDLE_DATA_DIR: dataDir };
    server = await startServerProcess(dataDir);
    const banner = await until(async () => (server!.output().includes('Spindle is archiving') ? server!.output() : null));
    expect(banner).toMatch(/First start: created account "admin" \(role admin\)\. Its password, shown only this once:\n\n {4}\S{20}\n/);
    const password = /shown only this once:\n\n {4}(\S{20})\n/.exec(banner)![1]!;
    expect(banner.split('\n').filter((l) => l.includes(password))).toHaveLength(1); // printed once, never in a log line

    expect((await runCli(['token', 'create', '--role', 'auditor', '--name', 'cli-made'], env)).code).toBe(0);
    expect((await runCli(['user', 'add', 'carol', '--role', 'user', '--address', 'carol@example.com'], env)).code).toBe(0);
    const entries = await until(async () => {
      const e = await auditActions(env);
      return e.some((x) => x.action === 'user.create') && e.some((x) => x.action === 'token.create') ? e : null;
    });
    expect(entries.find((e) => e.action === 'user.create')).toMatchObject({ target: 'carol', details: { addresses: 'carol@example.com' } });
    expect(entries.find((e) => e.action === 'user.create')!.details.spool_id).toEqual(expect.any(String));

    // Signing in as the first admin works with the printed password.
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/api/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }),
    });
    expect(res.status).toBe(200);
    server.child.kill('SIGTERM');
    await new Promise((r) => server!.child.once('exit', r));
    server = await startServerProcess(dataDir);
    await until(async () => (server!.output().includes('Spindle is archiving') ? true : null));
    expect(server.output()).not.toMatch(/First start/);
  }, 90_000);
});
