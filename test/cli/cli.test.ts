import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildMessage, startTestArchive, tempDir } from '../helpers/archive.js';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startServerProcess } from '../helpers/cli.js';
import { openSmtp } from '../helpers/smtp-client.js';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('spindle CLI', () => {
  it('lists its commands and every command has --help', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    const commands = ['serve', 'search', 'show', 'token', 'stats', 'rebuild', 'verify', 'config', 'postfix-config'];
    for (const c of commands) expect(help.stdout).toContain(c);
    const each = await Promise.all(commands.map((c) => runCli([c, '--help'])));
    each.forEach((r, i) => {
      expect(r.code, commands[i]).toBe(0);
      expect(r.stdout, commands[i]).toMatch(/^Usage: spindle/);
    });
  }, 120_000);

  it('errors are one clear line and a non-zero exit', async () => {
    const empty = tempDir();
    const cases: Array<[string[], Record<string, string>, RegExp, number]> = [
      [['search', 'x', '--data-dir', empty], {}, /^spindle: no archive database at .*spindle\.db/, 1],
      [['stats'], { SPINDLE_DATA_DIR: empty, SPINDLE_SMTP_PORT: 'ninety' }, /^spindle: SPINDLE_SMTP_PORT \(env\): expected a port number/, 2],
      [['show', 'abc', '--data-dir', empty], {}, /^spindle: message id must be a number/, 2],
      [['token', 'create', '--role', 'king', '--data-dir', empty], {}, /^spindle: --role must be one of auditor, admin/, 2],
      [['config', '--config', '/nonexistent.json'], {}, /^spindle: cannot read config file/, 2],
    ];
    for (const [args, env, pattern, code] of cases) {
      const r = await runCli(args, env);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
      expect(r.code, args.join(' ')).toBe(code);
    }
  }, 60_000);

  it('config prints every setting with its source; flags beat env beat file beat defaults', async () => {
    const r = await runCli(['config', '--data-dir', '/srv/archive'], { SPINDLE_SMTP_PORT: '2626' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^SPINDLE_DATA_DIR=\/srv\/archive$/m);
    expect(r.stdout).toMatch(/# default: 2525; from: env\nSPINDLE_SMTP_PORT=2626/);
    expect(r.stdout).toMatch(/^SPINDLE_HTTP_HOST=127\.0\.0\.1$/m);
  });

  it('postfix-config prints both modes for the configured archive domain', async () => {
    const r = await runCli(['postfix-config'], { SPINDLE_ARCHIVE_ADDRESSES: 'journal@archive.example.org', SPINDLE_SMTP_PORT: '2600' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('recipient_bcc_maps');
    expect(r.stdout).toContain('journal+rcpt.${1}=${2}@archive.example.org');
    expect(r.stdout).toContain('always_bcc');
    expect(r.stdout).toContain('[127.0.0.1]:2600');
  });

  it('search, show --raw, stats, verify and rebuild work on a real archive', async () => {
    const archive = await startTestArchive();
    const dataDir = archive.config.dataDir;
    const session = await openSmtp(archive.smtp.port);
    const raws = Array.from({ length: 5 }, (_, i) => buildMessage({ subject: `cli message ${i}`, body: `unique${i} text`, date: `Mon, 0${i + 1} Apr 2024 09:00:00 +0000` }));
    for (const raw of raws) expect((await session.send({ from: 'a@example.com', to: ['archive@localhost'] }, raw)).code).toBe(250);
    await session.close();
    await archive.indexer.idle();
    await archive.close();
    const d = ['--data-dir', dataDir];

    const found = await runCli(['search', 'unique3', ...d]);
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/^1 message match/);
    expect(found.stdout).toContain('cli message 3');

    const json = JSON.parse((await runCli(['search', 'cli', '--json', '--limit', '2', ...d])).stdout) as { total: number; items: Array<{ id: number }>; next_cursor: string };
    expect(json.total).toBe(5);
    expect(json.items).toHaveLength(2);
    const page2 = JSON.parse((await runCli(['search', 'cli', '--json', '--limit', '2', '--cursor', json.next_cursor, ...d])).stdout) as { items: Array<{ id: number }> };
    expect(page2.items[0]!.id).toBeLessThan(json.items[1]!.id);

    const bad = await runCli(['search', 'subject:"open', ...d]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^spindle: bad query: .*quote/);

    const id = String(json.items[0]!.id);
    const raw = await runCli(['show', id, '--raw', ...d]);
    expect(sha(raw.stdout)).toBe(sha(raws[4]!));
    const shown = await runCli(['show', id, ...d]);
    expect(shown.stdout).toContain('Subject:     cli message 4');
    expect((await runCli(['show', '999', ...d])).stderr).toMatch(/^spindle: no message 999/);

    const stats = JSON.parse((await runCli(['stats', '--json', ...d])).stdout) as Record<string, unknown>;
    expect(stats).toMatchObject({ messages: 5, deliveries: 5, duplicates: 0, ledger_seq: 5, index_lag: { records: 0 } });

    const verify = await runCli(['verify', ...d]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('hash chain intact');
    expect(verify.stdout).toContain('OK: every archived message is present and intact.');

    const rebuild = await runCli(['rebuild', ...d]);
    expect(rebuild.code).toBe(0);
    expect(rebuild.stdout).toMatch(/Rebuilt the database from 5 ledger records: 5 messages/);
    expect((await runCli(['search', 'unique3', ...d])).stdout).toContain('cli message 3');
  }, 60_000);

  it('serve shuts down cleanly on SIGTERM: exit 0, lock released, nothing left in the blob journal', async () => {
    const dataDir = tempDir();
    const server = await startServerProcess(dataDir);
    const session = await openSmtp(server.smtpPort);
    expect((await session.send({ from: 'a@example.com', to: ['archive@localhost'] }, buildMessage({ subject: 'bye' }))).code).toBe(250);
    await session.close();
    expect(fs.existsSync(path.join(dataDir, 'spindle.pid'))).toBe(true);
    const exited = new Promise<number | null>((r) => server.child.once('exit', (code) => r(code)));
    server.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'spindle.pid'))).toBe(false);
    expect(fs.readdirSync(path.join(dataDir, 'blobs', 'journal'))).toEqual([]);
    const verify = await runCli(['verify', '--data-dir', dataDir]);
    expect(verify.code).toBe(0);
  }, 60_000);

  it('token create prints the secret once; list never shows it; revoke works', async () => {
    const dir = tempDir();
    const created = await runCli(['token', 'create', '--role', 'auditor', '--name', 'officer', '--data-dir', dir]);
    expect(created.code).toBe(0);
    const secret = /\b(spx_[A-Za-z0-9_-]{20,})\b/.exec(created.stdout)![1]!;
    const id = /Created token ([0-9a-f]+)/.exec(created.stdout)![1]!;
    const list = await runCli(['token', 'list', '--data-dir', dir]);
    expect(list.stdout).toContain('officer');
    expect(list.stdout).not.toContain(secret);
    expect((await runCli(['token', 'revoke', id, '--data-dir', dir])).code).toBe(0);
    expect((await runCli(['token', 'list', '--data-dir', dir])).stdout).toContain('REVOKED');
    expect((await runCli(['token', 'revoke', id, '--data-dir', dir])).code).toBe(1);
  }, 30_000);
});
