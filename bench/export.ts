/**
 * Export benchmark: how fast does `spindle export` write mbox and zip, and how much memory does it
 * take, on a large archive?
 *
 *   npx tsx bench/export.ts [--count 100000] [--size small|large] [--runs 3] [--out docs/benchmarks.md]
 *                           [--json FILE] [--seed N] [--keep]
 *
 * 1. Builds an archive of N messages (bench/lib/corpus.ts, generated 5,000 at a time on the same
 *    seed) without SMTP: every message through the blob store and the ledger, then
 *    `spindle rebuild`'s indexer (test/helpers/seed-archive.ts). Not timed as part of the result.
 * 2. Compiles a snapshot of src/ and runs `node dist/cli/main.js export --query '' --format F
 *    --out FILE` as a child process under /usr/bin/time, `runs` times per format: wall time, MB/s
 *    (original message bytes), msg/s, CPU, peak RSS (max resident set size of the process).
 *    The archive's blobs are in the page cache (warm), as on a server that has just ingested them.
 * 3. Runs the same exports on the first tenth of the archive (--before), so that peak RSS can be
 *    compared across export sizes.
 * 4. Checks the last outputs: the mbox has N `From ` lines; Python's zipfile checks every CRC.
 * 5. Measures deflate (levels 1 and 6) on a sample, for the zip's STORE-or-DEFLATE decision.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { generateCorpus, type CorpusSize } from './lib/corpus.js';
import { buildSnapshot, machineCpu, makeWorkDir, type ServerCommand } from './lib/server.js';
import { fmt, MB, median, MiB } from './lib/stats.js';
import { seedArchive, type SeedMessage } from '../test/helpers/seed-archive.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHUNK = 5000;
const DAY = 86_400_000;
const START = Date.UTC(2023, 0, 2, 7, 0, 0);
const TARGETS = { mboxMBps: 100, peakRssMB: 200 } as const;

interface Options { count: number; size: CorpusSize; runs: number; out: string | null; json: string | null; seed: number; keep: boolean }

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '100000' }, size: { type: 'string', default: 'small' }, runs: { type: 'string', default: '3' },
      out: { type: 'string' }, json: { type: 'string' }, seed: { type: 'string', default: '20240301' }, keep: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < CHUNK || count > 1_000_000) throw new Error(`--count must be ${CHUNK}..1,000,000`);
  if (values.size !== 'small' && values.size !== 'large') throw new Error('--size must be small or large');
  return { count, size: values.size, runs: Math.max(1, Number(values.runs)), out: values.out ?? null, json: values.json ?? null, seed: Number(values.seed), keep: values.keep };
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** The corpus, 5,000 at a time; chunk k starts k weeks after the first, so the first tenth is one date range. */
async function* corpus(opts: Options): AsyncGenerator<SeedMessage> {
  for (let k = 0; k * CHUNK < opts.count; k++) {
    const mails = generateCorpus({ count: Math.min(CHUNK, opts.count - k * CHUNK), size: opts.size, seed: opts.seed + k, startMs: START + k * 7 * DAY });
    for (const m of mails) yield { raw: m.raw, mailFrom: m.mailFrom };
  }
}

interface Run {
  format: 'mbox' | 'zip';
  scope: 'all' | 'tenth';
  messages: number;
  bytes: number;
  outputBytes: number;
  seconds: number;
  /** The export itself as the command reports it: from its first audit entry to the rename, without start-up. */
  exportSeconds: number;
  cpuSeconds: number;
  peakRssMB: number;
  otherCores: number;
}

async function runExport(cmd: ServerCommand, dataDir: string, workDir: string, format: 'mbox' | 'zip', scope: Run['scope'], before: string | null, expect: { messages: number; bytes: number }): Promise<Run> {
  const out = path.join(workDir, `out.${format}`);
  const timeFile = path.join(workDir, 'time.txt');
  const args = ['-o', timeFile, '-f', '%M %U %S', ...cmd.argv, 'export', '--query', '', ...(before ? ['--before', before] : []), '--format', format, '--out', out, '--force'];
  const cpu0 = machineCpu();
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('/usr/bin/time', args, { env: { ...process.env, SPINDLE_DATA_DIR: dataDir, SPINDLE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    child.stdout.on('data', (d: Buffer) => (o += d.toString()));
    child.stderr.on('data', (d: Buffer) => (e += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c ?? -1, stdout: o, stderr: e }));
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = machineCpu();
  if (code !== 0) throw new Error(`export ${format} failed (${code}):\n${stderr.slice(-2000)}`);
  const [maxRssKb, user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split(/\s+/).map(Number);
  const exported = Number(/^Exported ([\d,]+) messages/.exec(stdout)?.[1]?.replace(/,/g, '') ?? NaN);
  const exportSeconds = Number(/ in ([\d.]+) s \(/.exec(stdout)?.[1] ?? NaN);
  if (exported !== expect.messages) throw new Error(`expected ${expect.messages} messages, the export says ${exported}:\n${stdout}`);
  const cpuSeconds = user! + sys!;
  const run: Run = {
    format, scope, messages: exported, bytes: expect.bytes, outputBytes: fs.statSync(out).size, seconds, exportSeconds, cpuSeconds,
    peakRssMB: (maxRssKb! * 1024) / MB, otherCores: Math.max(0, (cpu1.busy - cpu0.busy - cpuSeconds) / seconds),
  };
  log(`  ${format} ${scope}: ${fmt(exported)} msgs in ${fmt(seconds, 2)} s = ${fmt(expect.bytes / MB / seconds, 1)} MB/s (export phase ${fmt(expect.bytes / MB / exportSeconds, 1)}), ${fmt(exported / seconds)} msg/s, ` +
    `peak RSS ${fmt(run.peakRssMB)} MB, CPU ${fmt(cpuSeconds, 1)} s, other processes ${fmt(run.otherCores, 2)} cores`);
  return run;
}

/** Peak RSS of the CLI doing nothing (Node, the modules it loads). */
function baselineRss(cmd: ServerCommand, workDir: string): number {
  const timeFile = path.join(workDir, 'time.txt');
  execFileSync('/usr/bin/time', ['-o', timeFile, '-f', '%M', ...cmd.argv, '--version'], { stdio: 'ignore' });
  return (Number(fs.readFileSync(timeFile, 'utf8').trim()) * 1024) / MB;
}

/** The last outputs are what they claim: every message in the mbox, every CRC in the zip. */
function verify(workDir: string, count: number): string[] {
  const notes: string[] = [];
  const mbox = path.join(workDir, 'out.mbox');
  const froms = Number(execFileSync('sh', ['-c', `grep -c '^From ' "${mbox}"`]).toString().trim());
  if (froms !== count) throw new Error(`mbox has ${froms} From lines, expected ${count}`);
  notes.push(`mbox: ${fmt(froms)} \`From \` lines`);
  const py = execFileSync('python3', ['-c', 'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nprint(len(z.infolist()), z.testzip())', path.join(workDir, 'out.zip')]).toString().trim();
  if (py !== `${count + 2} None`) throw new Error(`zipfile says ${py}, expected ${count + 2} entries and no bad CRC`);
  notes.push(`zip: ${fmt(count + 2)} entries (messages + 2 manifests), Python's zipfile.testzip() found no bad CRC`);
  return notes;
}

/** Single-core deflate throughput on the first 2,000 messages, vs CRC-32 alone (STORE). */
function deflateProbe(dataDir: string): Array<{ method: string; MBps: number; ratio: number }> {
  const db = new Database(path.join(dataDir, 'spindle.db'), { readonly: true });
  const shas = db.prepare('SELECT blob_sha256 FROM messages ORDER BY id LIMIT 2000').pluck().all() as string[];
  db.close();
  const blobs = shas.map((s) => zlib.gunzipSync(fs.readFileSync(path.join(dataDir, 'blobs', s.slice(0, 2), s.slice(2, 4), `${s}.eml.gz`))));
  const total = blobs.reduce((n, b) => n + b.length, 0);
  const time = (fn: (b: Buffer) => number) => {
    const once = () => {
      const t0 = performance.now();
      let out = 0;
      for (const b of blobs) out += fn(b);
      return { MBps: total / MB / ((performance.now() - t0) / 1000), ratio: out / total };
    };
    once(); // warm-up: the first pass pays for compiling and allocating
    return once();
  };
  return [
    { method: 'STORE (CRC-32 only)', ...time((b) => (zlib.crc32(b), b.length)) },
    { method: 'DEFLATE level 1', ...time((b) => zlib.deflateRawSync(b, { level: 1 }).length) },
    { method: 'DEFLATE level 6 (zip default)', ...time((b) => zlib.deflateRawSync(b, { level: 6 }).length) },
  ];
}

function markdown(o: Options, info: { buildSeconds: number; baselineRssMB: number; rawBytes: number; storedBytes: number; tenth: { messages: number; bytes: number; before: string } },
  runs: Run[], notes: string[], probe: ReturnType<typeof deflateProbe>): string {
  const row = (format: Run['format'], scope: Run['scope']) => {
    const rs = runs.filter((r) => r.format === format && r.scope === scope);
    const m = (f: (r: Run) => number, d = 0) => `${fmt(median(rs.map(f)), d)}${rs.length > 1 ? ` (${fmt(Math.min(...rs.map(f)), d)}–${fmt(Math.max(...rs.map(f)), d)})` : ''}`;
    const r0 = rs[0]!;
    return `| ${format} | ${fmt(r0.messages)} | ${fmt(r0.bytes / MB)} MB → ${fmt(r0.outputBytes / MB)} MB | ${m((r) => r.bytes / MB / r.seconds, 1)} | ${m((r) => r.bytes / MB / r.exportSeconds, 1)} | ${m((r) => r.messages / r.seconds)} | ` +
      `${m((r) => r.seconds, 1)} s | ${m((r) => r.cpuSeconds / r.messages * 1e6)} µs | ${m((r) => r.peakRssMB)} MB | ${fmt(median(rs.map((r) => r.otherCores)), 2)} |`;
  };
  const head = '| format | messages | message bytes → file | MB/s (whole command) | MB/s (export phase) | msg/s | wall time | CPU per message | peak RSS | other processes (cores) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const all = runs.filter((r) => r.scope === 'all');
  const mboxMBps = median(all.filter((r) => r.format === 'mbox').map((r) => r.bytes / MB / r.seconds));
  const mboxPhase = median(all.filter((r) => r.format === 'mbox').map((r) => r.bytes / MB / r.exportSeconds));
  const peak = Math.max(...runs.map((r) => r.peakRssMB));
  return [
    `### ${fmt(o.count)} ${o.size} messages (${fmt(info.rawBytes / MB)} MB of originals, ${fmt(info.storedBytes / MB)} MB stored)`,
    '',
    `\`npx tsx bench/export.ts --count ${o.count} --size ${o.size} --runs ${o.runs}${o.out ? ` --out ${path.relative(REPO, o.out)}` : ''}\` — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
      `Node ${process.version}, archive built in ${fmt(info.buildSeconds)} s (store + ledger + rebuild's indexer, not part of the result).`,
    '',
    `Whole archive (\`spindle export --query '' --format F --out FILE\`), medians of ${o.runs} runs (min–max):`,
    '',
    head, row('mbox', 'all'), row('zip', 'all'),
    '',
    `The first tenth (\`--before ${info.tenth.before}\`: ${fmt(info.tenth.messages)} messages), one run each, to compare memory across export sizes:`,
    '',
    head, row('mbox', 'tenth'), row('zip', 'tenth'),
    '',
    `Targets: ≥ ${TARGETS.mboxMBps} MB/s to mbox — whole command **${mboxMBps >= TARGETS.mboxMBps ? 'met' : 'missed'}** (${fmt(mboxMBps, 1)} MB/s), ` +
      `export phase **${mboxPhase >= TARGETS.mboxMBps ? 'met' : 'missed'}** (${fmt(mboxPhase, 1)} MB/s); ` +
      `peak RSS under ${TARGETS.peakRssMB} MB — **${peak < TARGETS.peakRssMB ? 'met' : 'missed'}** (highest ${fmt(peak)} MB; \`spindle --version\` alone peaks at ${fmt(info.baselineRssMB)} MB).`,
    '',
    '"Whole command" is the wall time of the process, Node start-up and loading every CLI module (~0.6 s) included; ' +
      '"export phase" is the time the command reports itself, from its first audit entry to the rename of the finished file. ' +
      `MB/s counts original message bytes (1 MB = 10^6 bytes); CPU per message is the export process's user + system time (all threads: the reader thread's reads, gunzip and sha256; the main thread; V8 and libuv helpers) ` +
      'divided by the messages; peak RSS is `/usr/bin/time`\'s maximum resident set size; "other processes" is the machine\'s busy CPU during the run minus the export\'s own (the machine is shared). ' +
      'Each run includes opening the archive, counting, both audit entries, fsync and rename.',
    '',
    `Checked after the last runs: ${notes.join('; ')}.`,
    '',
    'Compression for zip entries, one core, on the first 2,000 messages of the same archive:',
    '',
    '| method | MB/s | size |\n|---|---:|---:|',
    ...probe.map((p) => `| ${p.method} | ${fmt(p.MBps)} | ${fmt(p.ratio * 100)}% |`),
  ].join('\n');
}

function updateDoc(file: string, body: string): void {
  const begin = '<!-- bench:export:begin -->';
  const end = '<!-- bench:export:end -->';
  let doc = fs.readFileSync(file, 'utf8');
  const block = `${begin}\n${body}\n${end}`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) doc = doc.slice(0, a) + block + doc.slice(b + end.length);
  else doc = `${doc.replace(/\n*$/, '\n\n')}## Export\n\n${block}\n`;
  fs.writeFileSync(file, doc);
}

async function main(): Promise<void> {
  const o = parseOptions();
  const workDir = makeWorkDir('spindle-bench-export-');
  const dataDir = path.join(workDir, 'data');
  const cleanup = () => {
    if (!o.keep) fs.rmSync(workDir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    log(`bench/export: ${fmt(o.count)} ${o.size} messages, ${o.runs} run(s) per format; work dir ${workDir}`);
    const cmd = buildSnapshot(REPO, workDir);
    const b0 = performance.now();
    let lastLog = 0;
    await seedArchive(dataDir, corpus(o), {
      concurrency: 64, env: { SPINDLE_PARSE_WORKERS: '2' },
      onStored: (n) => {
        if (Date.now() - lastLog > 10_000 || n === o.count) {
          lastLog = Date.now();
          log(`  stored ${fmt(n)}/${fmt(o.count)} (${fmt((performance.now() - b0) / 1000)} s); indexing follows`);
        }
      },
    });
    const buildSeconds = (performance.now() - b0) / 1000;
    const db = new Database(path.join(dataDir, 'spindle.db'), { readonly: true });
    const before = new Date(START + 2 * 7 * DAY).toISOString().slice(0, 10);
    const totals = db.prepare('SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM messages').get() as { messages: number; bytes: number };
    const tenth = db.prepare('SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM messages WHERE sort_time < ?').get(Date.parse(before)) as { messages: number; bytes: number };
    const storedBytes = db.prepare('SELECT coalesce(sum(stored_size), 0) FROM blobs').pluck().get() as number;
    db.close();
    if (totals.messages !== o.count) throw new Error(`archive holds ${totals.messages} messages, expected ${o.count}`);
    log(`  archive: ${fmt(totals.messages)} messages, ${fmt(totals.bytes / MB)} MB, built in ${fmt(buildSeconds)} s`);

    const runs: Run[] = [];
    for (let r = 0; r < o.runs; r++) {
      for (const format of ['mbox', 'zip'] as const) runs.push(await runExport(cmd, dataDir, workDir, format, 'all', null, totals));
    }
    const notes = verify(workDir, o.count);
    for (const format of ['mbox', 'zip'] as const) runs.push(await runExport(cmd, dataDir, workDir, format, 'tenth', before, tenth));
    const probe = deflateProbe(dataDir);
    for (const p of probe) log(`  ${p.method}: ${fmt(p.MBps)} MB/s, ${fmt(p.ratio * 100)}%`);

    const md = markdown(o, { buildSeconds, baselineRssMB: baselineRss(cmd, workDir), rawBytes: totals.bytes, storedBytes, tenth: { ...tenth, before } }, runs, notes, probe);
    process.stdout.write(`${md}\n`);
    if (o.out) updateDoc(o.out, md);
    if (o.json) fs.writeFileSync(o.json, JSON.stringify({ options: o, buildSeconds, totals, tenth, storedBytes, runs, probe, MiB }, null, 2));
  } finally {
    cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/export: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
