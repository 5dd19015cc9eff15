/** `spindle restore` beside a running archive, into a throwaway Dovecot with a master user. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJournalAddress } from '../../src/journal/archive-address.js';
import { buildMessage, startTestArchive, type TestArchive } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { dovecotAvailable, dovecotUnavailableReason, startDovecot, type DovecotInstance } from '../helpers/dovecot.js';
import { readFolder } from '../helpers/mailbox.js';
import { sendMail } from '../helpers/smtp-client.js';
import { tempDir } from '../helpers/tmp.js';

const BOB_PW = 'bob-mail-pw-Lm2';
const MASTER_PW = 'master-pw-Cx4-secret';

interface Entry { actor: string; target: string; outcome: string; details: Record<string, unknown> }

describe.skipIf(!dovecotAvailable())('spindle restore (real Dovecot)', () => {
  let dovecot: DovecotInstance;
  let archive: TestArchive;
  let env: Record<string, string>;
  const ids: number[] = [];

  beforeAll(async () => {
    dovecot = await startDovecot({ users: { 'bob@example.com': BOB_PW }, masterUsers: { 'spindle-restore': MASTER_PW } });
    const caFile = path.join(tempDir(), 'ca.pem');
    fs.writeFileSync(caFile, dovecot.ca);
    env = {
      SPINDLE_IMAP_HOST: '127.0.0.1', SPINDLE_IMAP_PORT: String(dovecot.imapsPort), SPINDLE_IMAP_SECURITY: 'tls', SPINDLE_IMAP_CA: caFile,
      SPINDLE_RESTORE_IMAP_USER: 'spindle-restore', SPINDLE_RESTORE_IMAP_PASSWORD: MASTER_PW,
    };
    archive = await startTestArchive({ SPINDLE_ARCHIVE_ADDRESSES: '@archive.example' });
    env.SPINDLE_DATA_DIR = archive.config.dataDir;
    for (const n of [1, 2]) {
      const raw = buildMessage({ subject: `cli ${n} kiwi`, date: `Tue, 0${n} Apr 2024 09:00:00 +0000`, messageId: `cli${n}@example.com` });
      expect((await sendMail(archive.smtp.port, { from: 'alice@example.com', to: [encodeJournalAddress('rcpt', 'bob@example.com', 'archive.example')] }, raw)).code).toBe(250);
    }
    await archive.indexer.idle();
    const found = await archive.api<{ items: Array<{ id: number }> }>('/api/search?q=kiwi');
    ids.push(...found.body.items.map((i) => i.id).sort((a, b) => a - b));
    expect(ids).toHaveLength(2);
  }, 90_000);
  afterAll(async () => {
    await archive?.close();
    await dovecot?.stop();
  });

  it('restores into the mailbox with the master user, prints a summary, and is on the audit trail as cli:<user>', async () => {
    const r = await runCli(['restore', '--ids', ids.join(','), '--mailbox', 'bob@example.com', '--folder', 'FromCli'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Restored 2 of 2 message\(s\) into bob@example\.com, folder FromCli \(restore [0-9a-f]{12}\)\./);
    expect(await readFolder(dovecot, 'bob@example.com', BOB_PW, 'FromCli')).toHaveLength(2);
    expect(r.stdout + r.stderr).not.toContain(MASTER_PW);

    // Beside a live server the entries are spooled; the server takes them in within two seconds.
    const deadline = Date.now() + 15_000;
    let entries: Entry[] = [];
    while (Date.now() < deadline) {
      entries = (await archive.api<{ items: Entry[] }>('/api/audit?action=restore', 'admin')).body.items.reverse();
      if (entries.length >= 2) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(entries.map((e) => [e.details.stage, e.outcome, e.target])).toEqual([['start', 'ok', 'bob@example.com'], ['done', 'ok', 'bob@example.com']]);
    expect(entries[0]!.actor).toMatch(/^cli:/);
    expect(entries[1]!.details).toMatchObject({ method: 'master', ids_count: 2, appended: 2, folder: 'FromCli' });
  });

  it('--query with --json; a missing id makes the exit code 1', async () => {
    const r = await runCli(['restore', '--query', 'kiwi', '--mailbox', 'bob@example.com', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ mailbox: 'bob@example.com', folder: 'Restored', selected: 2, appended: 2, outcome: 'ok' });
    const partly = await runCli(['restore', '--ids', `${ids[0]},123`, '--mailbox', 'bob@example.com', '--folder', 'Partly'], env);
    expect(partly.code).toBe(1);
    expect(partly.stdout).toMatch(/Restored 1 of 1 .*\nNo such message: 123\n/);
  });

  it('refuses bad usage (2) and a missing master user (1) with a clear message', async () => {
    const both = await runCli(['restore', '--ids', '1', '--query', 'x', '--mailbox', 'bob@example.com'], env);
    expect([both.code, both.stderr.trim()]).toEqual([2, 'spindle: give either --ids or --query']);
    expect((await runCli(['restore', '--ids', '1,x', '--mailbox', 'bob@example.com'], env)).code).toBe(2);
    expect((await runCli(['restore', '--ids', '1', '--mailbox', 'nobody'], env)).code).toBe(2);
    const { SPINDLE_RESTORE_IMAP_USER: _u, SPINDLE_RESTORE_IMAP_PASSWORD: _p, ...noMaster } = env;
    const r = await runCli(['restore', '--ids', String(ids[0]), '--mailbox', 'bob@example.com'], noMaster);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SPINDLE_RESTORE_IMAP_USER and SPINDLE_RESTORE_IMAP_PASSWORD/);
  });
});
if (!dovecotAvailable()) console.warn(`[skip] spindle restore tests: ${dovecotUnavailableReason()}`);
