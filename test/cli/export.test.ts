import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServerProcess, type ServerProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { ARCHIVE_ENV, seedExportFixture, type FixtureMessage } from '../export/fixture.js';
import { readMboxWithPython, readZipWithPython } from '../export/python.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let seeded: string;
let messages: Array<FixtureMessage & { id: number }>;
let server: ServerProcess | null = null;

/** A fresh copy of the seeded archive, so tests can change it. */
function archiveCopy(): { dataDir: string; env: Record<string, string> } {
  const dataDir = tempDir();
  fs.cpSync(seeded, dataDir, { recursive: true });
  return { dataDir, env: { SPINDLE_DATA_DIR: dataDir, ...ARCHIVE_ENV } };
}

const exportActions = async (env: Record<string, string>) => {
  const r = await runCli(['audit', '--json', '--action', 'export'], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { actor: string; outcome: string; target: string; details: Record<string, unknown> }).reverse();
};

beforeAll(async () => {
  seeded = tempDir();
  messages = await seedExportFixture(seeded);
}, 60_000);
afterEach(() => {
  server?.child.kill('SIGTERM');
  server = null;
});

describe('spindle export', () => {
  it('mbox: the file, its manifests and its sha256, all under their final names; a summary; on the audit trail', async () => {
    const { env } = archiveCopy();
    const out = path.join(tempDir(), 'bob.mbox');
    const r = await runCli(['export', '--mailbox', 'bob@example.com,team@example.com', '--format', 'mbox', '--out', out], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Exported 3 messages \\(2\\.\\d MB\\) to ${out} in [\\d.]+ s \\([\\d.]+ MB/s, \\d+ msg/s\\)\\n`));
    expect(r.stderr).toMatch(/^export: \d\/3 /m); // plain progress lines when not on a terminal
    const digest = sha(fs.readFileSync(out));
    expect(r.stdout).toContain(`sha256:   ${digest}`);
    expect(fs.readFileSync(`${out}.sha256`, 'utf8')).toBe(`${digest}  bob.mbox\n`);
    expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(['bob.mbox', 'bob.mbox.manifest.csv', 'bob.mbox.manifest.json', 'bob.mbox.sha256']);
    const read = await readMboxWithPython(out);
    expect(read.map((m) => m.sha256)).toEqual(['m1', 'm3', 'm4'].map((k) => messages.find((m) => m.key === k)!.sha256));
    const manifest = JSON.parse(fs.readFileSync(`${out}.manifest.json`, 'utf8')) as { selection: Record<string, unknown>; messages: Array<{ sha256: string }> };
    expect(manifest.selection).toEqual({ mailbox: 'bob@example.com,team@example.com', after: null, before: null });
    expect(manifest.messages.map((m) => m.sha256)).toEqual(read.map((m) => m.sha256));

    const entries = await exportActions(env);
    expect(entries.map((e) => [e.outcome, e.details.phase, e.details.count])).toEqual([['ok', 'start', 3], ['ok', 'end', 3]]);
    expect(entries[0]!.actor).toMatch(/^cli:/);
    expect(entries[1]!.target).toBe(entries[0]!.target);
    expect(entries[1]!.details).toMatchObject({ mailbox: 'bob@example.com,team@example.com', format: 'mbox', out, digest });
  }, 60_000);

  it('zip and dir; refuses to overwrite without --force', async () => {
    const { env } = archiveCopy();
    const dir = tempDir();
    const zip = path.join(dir, 'all.zip');
    expect((await runCli(['export', '--query', 'pineapple', '--after', '2024-03-02', '--format', 'zip', '--out', zip], env)).code).toBe(0);
    const z = await readZipWithPython(zip);
    expect(z.bad).toBeNull();
    expect(z.manifest.map((m) => m.sha256)).toEqual(['m2', 'm3'].map((k) => messages.find((m) => m.key === k)!.sha256));
    expect(fs.readFileSync(`${zip}.sha256`, 'utf8')).toBe(`${sha(fs.readFileSync(zip))}  all.zip\n`);

    const again = await runCli(['export', '--query', '', '--format', 'zip', '--out', zip], env);
    expect([again.code, again.stderr.trim()]).toEqual([2, `spindle: ${zip} exists; choose another --out or add --force to replace it`]);
    expect((await runCli(['export', '--query', '', '--format', 'zip', '--out', zip, '--force'], env)).code).toBe(0);
    expect((await readZipWithPython(zip)).entries.length).toBe(8);

    const tree = path.join(dir, 'tree');
    expect((await runCli(['export', '--domain', 'example.org', '--format', 'dir', '--out', tree], env)).code).toBe(0);
    const files = fs.readdirSync(tree).sort();
    expect(files).toEqual([expect.stringMatching(/^2024-03-05_1204_m5-note_\d+\.eml$/), 'manifest.csv', 'manifest.json']);
    expect(sha(fs.readFileSync(path.join(tree, files[0]!)))).toBe(messages.find((m) => m.key === 'm5')!.sha256);
    expect(fs.readFileSync(`${tree}.sha256`, 'utf8')).toBe(`${sha(fs.readFileSync(path.join(tree, 'manifest.json')))}  tree/manifest.json\n`);
    expect((await runCli(['export', '--domain', 'example.com', '--format', 'dir', '--out', tree, '--force'], env)).code).toBe(0);
    expect(fs.readdirSync(tree).filter((f) => f.endsWith('.eml')).length).toBe(5);
    expect(fs.readdirSync(dir).sort()).toEqual(['all.zip', 'all.zip.sha256', 'tree', 'tree.sha256']);
  }, 60_000);

  it('a failure exits 1 and leaves nothing under the final name, nor any partial file; it is on record', async () => {
    const { dataDir, env } = archiveCopy();
    const m4 = messages.find((m) => m.key === 'm4')!;
    fs.writeFileSync(path.join(dataDir, 'blobs', m4.sha256.slice(0, 2), m4.sha256.slice(2, 4), `${m4.sha256}.eml.gz`), zlib.gzipSync(Buffer.from('tampered')));
    const dir = tempDir();
    for (const format of ['mbox', 'zip', 'dir']) {
      const r = await runCli(['export', '--query', '', '--format', format, '--out', path.join(dir, `x.${format}`)], env);
      expect(r.code, format).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^spindle: export failed, nothing was left under .*x\\.${format}: message ${m4.id}: blob ${m4.sha256} read back as 8 bytes`, 'm'));
    }
    expect(fs.readdirSync(dir)).toEqual([]);
    const entries = await exportActions(env);
    expect(entries.filter((e) => e.outcome === 'failed').length).toBe(3);
  }, 60_000);

  it('bad input exits 2 with a reason', async () => {
    const { env } = archiveCopy();
    const out = path.join(tempDir(), 'x.mbox');
    const run = async (...args: string[]) => {
      const r = await runCli(['export', '--format', 'mbox', '--out', out, ...args], env);
      return [r.code, r.stderr.trim()];
    };
    expect(await run()).toEqual([2, 'spindle: give exactly one of --query, --mailbox or --domain']);
    expect(await run('--query', 'a', '--domain', 'example.com')).toEqual([2, 'spindle: give exactly one of --query, --mailbox or --domain']);
    expect(await run('--query', '(a')).toEqual([2, expect.stringMatching(/^spindle: bad query: /)]);
    expect(await run('--mailbox', 'bob', '--after', '2024-01-01')).toEqual([2, 'spindle: mailbox: "bob" is not an address']);
    expect(await run('--query', '', '--before', 'soon')).toEqual([2, 'spindle: before expects a date like 2024-03-01, got "soon"']);
    const badFormat = await runCli(['export', '--query', '', '--format', 'pst', '--out', out], env);
    expect([badFormat.code, badFormat.stderr.trim()]).toEqual([2, 'spindle: --format must be mbox, zip or dir']);
    expect(await run('--query', '', '--out', path.join(tempDir(), 'no', 'such', 'dir', 'x.mbox'))).toEqual([2, expect.stringMatching(/does not exist$/)]);
    expect(fs.existsSync(out)).toBe(false);
  }, 60_000);

  it('beside a running server: reads the archive read-only, and the server takes its audit entries in', async () => {
    const { dataDir, env } = archiveCopy();
    server = await startServerProcess(dataDir, ARCHIVE_ENV);
    const out = path.join(tempDir(), 'live.mbox');
    const r = await runCli(['export', '--query', '', '--format', 'mbox', '--out', out], env);
    expect(r.code, r.stderr).toBe(0);
    expect((await readMboxWithPython(out)).length).toBe(6);
    let entries: Awaited<ReturnType<typeof exportActions>> = [];
    for (let i = 0; i < 75 && entries.length < 2; i++) {
      await new Promise((res) => setTimeout(res, 200));
      entries = await exportActions(env);
    }
    expect(entries.map((e) => e.details.phase)).toEqual(['start', 'end']);
  }, 60_000);
});
