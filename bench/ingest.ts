/**
 * Ingest benchmark: how fast does Spindle accept mail durably, and how soon is it searchable?
 *
 *   npx tsx bench/ingest.ts [--size small|large] [--count N] [--sessions 20] [--runs 1]
 *                           [--out docs/benchmarks.md] [--json FILE] [--server snapshot|dist|tsx]
 *                           [--cpu-prof DIR] [--node-arg FLAG ...] [--skip-postfix-tools] [--env SPINDLE_X=VALUE|UV_THREADPOOL_SIZE=N ...]
 *                           [--seed N] [--keep]
 *
 * 1. Generates N distinct, real-world-shaped messages in memory (seeded, so every run sends the
 *    same bytes) before anything is timed.
 * 2. Per run: compiles a snapshot of src/ (once), creates a fresh data dir and an auditor token,
 *    starts `spindle serve` as a child process on loopback ports, opens K persistent SMTP sessions
 *    (connection set-up and smtp-server's 100 ms greeting delay are not timed), then sends the N
 *    messages. Measures per message the time from DATA to the 250, overall msg/s and MB/s, every
 *    non-250 reply; then polls /api/stats every 50 ms until the index has caught up (time until all
 *    searchable after the last 250), searches for a word only the last acknowledged message has,
 *    reads the server's peak RSS (VmHWM) and CPU time, the stored/raw ratio and the data dir size.
 * 3. For scale: Postfix's smtp-source against smtp-sink (what the machine absorbs in C) and
 *    smtp-source against Spindle (a second, independent load generator).
 *
 * Bounded: N <= 200,000, loopback only, every server it starts is killed at the end, on error and
 * on SIGINT/SIGTERM.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateCorpus, type CorpusSize } from './lib/corpus.js';
import { formatSummary, summarizeProfile } from './lib/cpuprofile.js';
import { findTool, runSource, startSink } from './lib/postfix-tools.js';
import {
  busiestOtherProcesses, cpuOf, createToken, diskUsage, killAllServers, machineCpu, makeWorkDir, memoryOf, serverCommand, sleep, startServer, tail,
  type CpuTimes, type RunningServer, type ServerCommand, type Stats,
} from './lib/server.js';
import { SmtpClient, toWire } from './lib/smtp-client.js';
import { fmt, MB, median, MiB, percentile } from './lib/stats.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_COUNT = 200_000;
const MAX_SESSIONS = 100; // Spindle's default SPINDLE_SMTP_MAX_CLIENTS
const ARCHIVE_RCPT = 'archive@localhost';
const TARGETS = { small: { msgPerS: 1500 }, large: { msgPerS: 300 }, searchableS: 2 } as const;

interface Options {
  size: CorpusSize;
  count: number;
  sessions: number;
  runs: number;
  out: string | null;
  json: string | null;
  server: 'snapshot' | 'dist' | 'tsx';
  cpuProf: string | null;
  nodeArgs: string[];
  postfixTools: boolean;
  env: Record<string, string>;
  seed: number;
  keep: boolean;
}

function usage(): never {
  process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 22).map((l) => l.replace(/^ \*\/? ?/, '')).join('\n') + '\n');
  process.exit(0);
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'small' },
      count: { type: 'string' },
      sessions: { type: 'string', default: '20' },
      runs: { type: 'string', default: '1' },
      out: { type: 'string' },
      json: { type: 'string' },
      server: { type: 'string', default: 'snapshot' },
      'cpu-prof': { type: 'string' },
      'node-arg': { type: 'string', multiple: true },
      'skip-postfix-tools': { type: 'boolean', default: false },
      env: { type: 'string', multiple: true },
      seed: { type: 'string', default: '20240901' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) usage();
  const size = values.size as CorpusSize;
  if (size !== 'small' && size !== 'large') throw new Error('--size must be small or large');
  const int = (name: string, v: string | undefined, def: number, min: number, max: number): number => {
    const n = v === undefined ? def : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const server = values.server as Options['server'];
  if (!['snapshot', 'dist', 'tsx'].includes(server)) throw new Error('--server must be snapshot, dist or tsx');
  const env: Record<string, string> = {};
  for (const kv of values.env ?? []) {
    const m = /^(SPINDLE_[A-Z0-9_]+|UV_THREADPOOL_SIZE|MALLOC_[A-Z_]+_)=(.*)$/.exec(kv);
    if (!m) throw new Error(`--env expects SPINDLE_NAME=value, UV_THREADPOOL_SIZE=n or MALLOC_*_=n, got ${kv}`);
    if (/_(HOST|PORT|DATA_DIR)$/.test(m[1]!)) throw new Error(`--env ${m[1]} is set by the benchmark (loopback, port 0, fresh dir)`);
    env[m[1]!] = m[2]!;
  }
  return {
    size,
    count: int('count', values.count, size === 'small' ? 10_000 : 2_000, 1, MAX_COUNT),
    sessions: int('sessions', values.sessions, 20, 1, MAX_SESSIONS),
    runs: int('runs', values.runs, 1, 1, 10),
    out: values.out ?? null,
    json: values.json ?? null,
    server,
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : null,
    nodeArgs: values['node-arg'] ?? [],
    postfixTools: !values['skip-postfix-tools'],
    env,
    seed: int('seed', values.seed, 20240901, 0, 2 ** 32 - 1),
    keep: values.keep ?? false,
  };
}

// ---------------------------------------------------------------------------------------------

interface RunResult {
  run: number;
  count: number;
  sessions: number;
  totalBytes: number;
  wallS: number;
  msgPerS: number;
  mbPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  non250: number;
  non250Samples: string[];
  distinctSeqs: number;
  searchableAfterMs: number;
  searchFound: boolean;
  searchMs: number;
  commonSearchMs: number;
  commonSearchTotal: number;
  peakRssMiB: number;
  stats: Stats | null;
  storedRatio: number;
  disk: { allocated: number; apparent: number; blobs: number; ledger: number; db: number };
  serverCpu: { atLast250: CpuTimes | null; atSearchable: CpuTimes | null };
  benchCpuS: number;
  /** While sending: CPU of the whole machine, and of processes other than the server and this benchmark (cores). */
  machineBusyCores: number;
  otherCores: number;
  otherProcesses: string[];
  /** CLOCK_MONOTONIC µs of the first DATA and of the moment all was searchable (to cut CPU profiles). */
  window: { start: number; last250: number; searchable: number };
  parsePoolFallback: boolean;
  serverErrorLines: number;
  serverWarnLines: string[];
}

interface ToolResult {
  tool: string;
  argv: string[];
  count: number;
  seconds: number;
  msgPerS: number;
  mbPerS: number;
  exitCode: number | null;
  note: string;
  searchableAfterMs?: number;
  deliveries?: number;
  peakRssMiB?: number;
}

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

async function waitSearchable(server: RunningServer, token: string, expectMessages: number, expectDeliveries: number, timeoutMs: number): Promise<{ at: number; stats: Stats }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = await server.stats(token);
    const now = performance.now();
    if (s.index_lag.records === 0 && s.messages >= expectMessages && s.deliveries >= expectDeliveries) return { at: now, stats: s };
    if (now > deadline) throw new Error(`index did not catch up within ${timeoutMs} ms: ${JSON.stringify(s)}`);
    if (server.exited()) throw new Error(`server exited:\n${tail(server.logFile)}`);
    await sleep(50);
  }
}

function dirBytes(p: string): number {
  try {
    return diskUsage(p).allocated;
  } catch {
    return 0;
  }
}

function scanLog(file: string): { fallback: boolean; errors: number; warnings: string[] } {
  let fallback = false;
  let errors = 0;
  const warnings: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    if (/SPINDLE_PARSE_POOL|parse pool: workers fail|parsing on the calling thread/.test(line)) fallback = true;
    let level = 0;
    try {
      level = (JSON.parse(line) as { level?: number }).level ?? 0;
    } catch {
      // Not JSON: a Node warning on stderr, or a stack trace.
      if (/warn|error/i.test(line) && warnings.length < 5) warnings.push(line.slice(0, 300));
      continue;
    }
    if (level >= 50) errors++;
    else if (level === 40 && warnings.length < 5) warnings.push(line.slice(0, 300));
  }
  return { fallback, errors, warnings };
}

async function benchRun(run: number, opts: Options, cmd: ServerCommand, workDir: string, mails: ReturnType<typeof generateCorpus>, wires: Buffer[]): Promise<RunResult> {
  const runDir = path.join(workDir, `run-${run}`);
  const dataDir = path.join(runDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(runDir, 'server.log');
  const token = createToken(cmd, dataDir);
  const nodeArgs = [...opts.nodeArgs, ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(opts.cpuProf, `${opts.size}-run-${run}`)}`] : [])];
  const server = await startServer({ command: cmd, dataDir, logFile, nodeArgs, env: opts.env });
  log(`run ${run}: server pid ${server.pid}, smtp ${server.smtpPort}, http ${server.httpPort}, data ${dataDir}`);
  try {
    const n = mails.length;
    const clients = await Promise.all(Array.from({ length: opts.sessions }, () => SmtpClient.connect(server.smtpPort)));
    const dataMs = new Float64Array(n);
    const codes = new Int16Array(n);
    const seqs = new Set<number>();
    const non250: string[] = [];
    let next = 0;
    let last250At = 0;
    let last250Index = -1;
    const srvCpu0 = cpuOf(server.pid);
    const mach0 = machineCpu();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const mono = () => Number(process.hrtime.bigint() / 1000n);
    const monoOffset = mono() - t0 * 1000;
    const others = new Set<string>();
    const sampler = setInterval(() => busiestOtherProcesses([server.pid, process.pid, process.ppid]).forEach((p) => others.add(p.replace(/^\d+\s+[\d.]+\s+/, ''))), 2000);
    await Promise.all(clients.map(async (initial) => {
      let client = initial;
      for (let i = next++; i < n; i = next++) {
        const m = mails[i]!;
        let r;
        try {
          r = await client.send(m.mailFrom, [ARCHIVE_RCPT], wires[i]!);
        } catch (err) {
          r = { code: 0, text: `connection error: ${(err as Error).message}`, dataMs: NaN };
          await client.quit();
          client = await SmtpClient.connect(server.smtpPort);
        }
        dataMs[i] = r.dataMs;
        codes[i] = r.code;
        if (r.code === 250) {
          const now = performance.now();
          if (now > last250At) {
            last250At = now;
            last250Index = i;
          }
          const seq = /seq (\d+)/.exec(r.text);
          if (seq) seqs.add(Number(seq[1]));
        } else if (non250.length < 10) non250.push(`#${i}: ${r.code} ${r.text.split('\n')[0]}`);
      }
      await client.quit();
    }));
    const sendCpu = process.cpuUsage(cpu0);
    const mach1 = machineCpu();
    clearInterval(sampler);
    const cpuAtLast = cpuOf(server.pid);
    const wallS = (last250At - t0) / 1000;
    const ok = Array.from(codes).filter((c) => c === 250).length;
    log(`run ${run}: ${ok}/${n} answered 250 in ${wallS.toFixed(2)} s; waiting for the index…`);

    let searchableAfterMs = NaN;
    let stats: Stats | null = null;
    try {
      const w = await waitSearchable(server, token, ok, ok, 120_000 + n * 20);
      searchableAfterMs = w.at - last250At;
      stats = w.stats;
    } catch (err) {
      log(`run ${run}: ${(err as Error).message}`);
      stats = await server.stats(token).catch(() => null);
    }
    const cpuAtSearchable = cpuOf(server.pid);
    const target = mails[last250Index];
    const found = target ? await server.search(token, target.refWord) : { total: 0, items: [], ms: NaN };
    const common = await server.search(token, 'budget');
    const mem = memoryOf(server.pid);
    const du = diskUsage(dataDir);
    const sorted = Float64Array.from(dataMs.filter((x, i) => codes[i] === 250 && Number.isFinite(x))).sort();
    const totalBytes = mails.reduce((a, m) => a + m.raw.length, 0);
    const logScan = scanLog(logFile);
    return {
      run,
      count: n,
      sessions: opts.sessions,
      totalBytes,
      wallS,
      msgPerS: ok / wallS,
      mbPerS: totalBytes / MB / wallS,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: percentile(sorted, 100),
      non250: n - ok,
      non250Samples: non250.filter(Boolean),
      distinctSeqs: seqs.size,
      searchableAfterMs,
      searchFound: found.total === 1,
      searchMs: found.ms,
      commonSearchMs: common.ms,
      commonSearchTotal: common.total,
      peakRssMiB: mem ? mem.hwm / MiB : NaN,
      stats,
      storedRatio: stats && stats.raw_bytes > 0 ? stats.stored_bytes / stats.raw_bytes : NaN,
      disk: {
        ...du,
        blobs: dirBytes(path.join(dataDir, 'blobs')),
        ledger: dirBytes(path.join(dataDir, 'ledger')),
        db: ['spindle.db', 'spindle.db-wal', 'spindle.db-shm'].reduce((a, f) => a + dirBytes(path.join(dataDir, f)), 0),
      },
      serverCpu: { atLast250: cpuAtLast, atSearchable: cpuAtSearchable },
      benchCpuS: (sendCpu.user + sendCpu.system) / 1e6,
      machineBusyCores: (mach1.busy - mach0.busy) / wallS,
      otherCores: Math.max(0, (mach1.busy - mach0.busy) - ((cpuAtLast?.total ?? 0) - (srvCpu0?.total ?? 0)) - (sendCpu.user + sendCpu.system) / 1e6) / wallS,
      otherProcesses: [...others],
      window: { start: monoOffset + t0 * 1000, last250: monoOffset + last250At * 1000, searchable: monoOffset + (last250At + searchableAfterMs) * 1000 },
      parsePoolFallback: logScan.fallback,
      serverErrorLines: logScan.errors,
      serverWarnLines: logScan.warnings,
    };
  } finally {
    const exit = await server.stop();
    if (exit.code !== 0) log(`run ${run}: server exit ${JSON.stringify(exit)}`);
  }
}

async function sourceVsSpindle(opts: Options, cmd: ServerCommand, workDir: string, run: number, length: number): Promise<ToolResult> {
  const runDir = path.join(workDir, `smtp-source-${run}`);
  const dataDir = path.join(runDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const token = createToken(cmd, dataDir);
  const server = await startServer({ command: cmd, dataDir, logFile: path.join(runDir, 'server.log'), env: opts.env });
  try {
    const r = await runSource({ port: server.smtpPort, sessions: opts.sessions, count: opts.count, length, to: ARCHIVE_RCPT });
    const doneAt = performance.now();
    let searchableAfterMs = NaN;
    let stats: Stats | null = null;
    try {
      // smtp-source reuses Message-IDs across sessions with identical bodies: count deliveries.
      const w = await waitSearchable(server, token, 1, r.exitCode === 0 ? opts.count : 1, 120_000 + opts.count * 20);
      searchableAfterMs = w.at - doneAt;
      stats = w.stats;
    } catch (err) {
      log(`smtp-source vs Spindle: ${(err as Error).message}`);
      stats = await server.stats(token).catch(() => null);
    }
    const mem = memoryOf(server.pid);
    const meanSize = stats && stats.messages > 0 ? stats.raw_bytes / stats.messages : length;
    const deliveries = stats?.deliveries ?? 0;
    return {
      tool: 'smtp-source → Spindle',
      argv: r.argv,
      count: opts.count,
      seconds: r.seconds,
      msgPerS: deliveries / r.seconds,
      mbPerS: (deliveries * meanSize) / MB / r.seconds,
      exitCode: r.exitCode,
      note: r.exitCode === 0 ? `all 250; ${deliveries} deliveries, ${stats?.messages ?? '?'} distinct messages` : `smtp-source exit ${r.exitCode}: ${r.stderr.slice(0, 200)}`,
      searchableAfterMs,
      deliveries,
      peakRssMiB: mem ? mem.hwm / MiB : NaN,
    };
  } finally {
    await server.stop();
  }
}

async function sourceVsSink(opts: Options, length: number): Promise<ToolResult> {
  const sink = await startSink();
  try {
    const r = await runSource({ port: sink.port, sessions: opts.sessions, count: opts.count, length, to: ARCHIVE_RCPT });
    const approx = length + 150; // smtp-source adds From/To/Date/Message-Id, ~150 bytes
    return {
      tool: 'smtp-source → smtp-sink',
      argv: r.argv,
      count: opts.count,
      seconds: r.seconds,
      msgPerS: opts.count / r.seconds,
      mbPerS: (opts.count * approx) / MB / r.seconds,
      exitCode: r.exitCode,
      note: r.exitCode === 0 ? 'all 250' : `exit ${r.exitCode}: ${r.stderr.slice(0, 200)}`,
    };
  } finally {
    await sink.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

function resultTable(results: RunResult[], opts: Options): string {
  const med = (f: (r: RunResult) => number) => median(results.map(f));
  const cols = results.length > 1 ? ['median', ...results.map((r) => `run ${r.run}`)] : ['result'];
  const row = (label: string, f: (r: RunResult) => number, digits = 0, unit = '') => {
    const cells = results.length > 1 ? [med(f), ...results.map(f)] : [f(results[0]!)];
    return `| ${label} | ${cells.map((c) => `${fmt(c, digits)}${unit}`).join(' | ')} |`;
  };
  const target = opts.size === 'small' ? TARGETS.small.msgPerS : TARGETS.large.msgPerS;
  const cpuMain = (r: RunResult) => r.serverCpu.atSearchable?.main ?? NaN;
  const cpuTotal = (r: RunResult) => r.serverCpu.atSearchable?.total ?? NaN;
  const lines = [
    `| metric | ${cols.join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    row(`msg/s (DATA of first → last 250; target ≥ ${fmt(target)})`, (r) => r.msgPerS, 0),
    row('MB/s (10^6 bytes of message data)', (r) => r.mbPerS, 1),
    row('DATA → 250, p50', (r) => r.p50Ms, 1, ' ms'),
    row('DATA → 250, p90', (r) => r.p90Ms, 1, ' ms'),
    row('DATA → 250, p99', (r) => r.p99Ms, 1, ' ms'),
    row('DATA → 250, max', (r) => r.maxMs, 1, ' ms'),
    row('non-250 replies (must be 0)', (r) => r.non250, 0),
    row(`all searchable after the last 250 (target ≤ ${TARGETS.searchableS} s)`, (r) => r.searchableAfterMs, 0, ' ms'),
    row('search for the last message’s unique word: hits (must be 1)', (r) => (r.searchFound ? 1 : 0), 0),
    row('search latency, unique word (HTTP, top 10)', (r) => r.searchMs, 1, ' ms'),
    row('search latency, common word “budget” (HTTP, top 10)', (r) => r.commonSearchMs, 1, ' ms'),
    row('server peak RSS (VmHWM)', (r) => r.peakRssMiB, 0, ' MiB'),
    row('stored / raw (gzip)', (r) => r.storedRatio, 3),
    row('data dir on disk (du)', (r) => r.disk.allocated / MiB, 0, ' MiB'),
    row('  of which blobs/', (r) => r.disk.blobs / MiB, 0, ' MiB'),
    row('  of which ledger/', (r) => r.disk.ledger / MiB, 1, ' MiB'),
    row('  of which spindle.db (+wal)', (r) => r.disk.db / MiB, 0, ' MiB'),
    row('server CPU, whole process (s, until searchable)', cpuTotal, 1, ' s'),
    row('  of which main thread', cpuMain, 1, ' s'),
    row('  server CPU per message', (r) => (1000 * cpuTotal(r)) / r.count, 2, ' ms'),
    row('load generator CPU (s, while sending)', (r) => r.benchCpuS, 1, ' s'),
    row(`machine CPU in use while sending (cores of ${os.cpus().length})`, (r) => r.machineBusyCores, 2),
    row('  of which other processes (not server, not load generator)', (r) => r.otherCores, 2),
  ];
  return lines.join('\n');
}

function toolTable(tools: ToolResult[]): string {
  if (tools.length === 0) return '';
  const groups = new Map<string, ToolResult[]>();
  for (const t of tools) groups.set(t.tool, [...(groups.get(t.tool) ?? []), t]);
  const lines = ['| load | runs | seconds (median) | msg/s | MB/s | searchable after | peak RSS | notes |', '|---|---:|---:|---:|---:|---:|---:|---|'];
  for (const [tool, rs] of groups) {
    const m = (f: (r: ToolResult) => number) => median(rs.map(f));
    lines.push(`| ${tool} | ${rs.length} | ${fmt(m((r) => r.seconds), 2)} | ${fmt(m((r) => r.msgPerS))} | ${fmt(m((r) => r.mbPerS), 1)} | ` +
      `${rs[0]!.searchableAfterMs !== undefined ? `${fmt(m((r) => r.searchableAfterMs ?? NaN))} ms` : '–'} | ` +
      `${rs[0]!.peakRssMiB !== undefined ? `${fmt(m((r) => r.peakRssMiB ?? NaN))} MiB` : '–'} | ${rs.map((r) => r.note).filter((v, i, a) => a.indexOf(v) === i).join('; ')} |`);
  }
  return lines.join('\n');
}

function commandLine(opts: Options): string {
  const parts = ['npx tsx bench/ingest.ts', `--size ${opts.size}`, `--count ${opts.count}`, `--sessions ${opts.sessions}`];
  if (opts.runs > 1) parts.push(`--runs ${opts.runs}`);
  if (opts.server !== 'snapshot') parts.push(`--server ${opts.server}`);
  for (const [k, v] of Object.entries(opts.env)) parts.push(`--env ${k}=${v}`);
  if (!opts.postfixTools) parts.push('--skip-postfix-tools');
  if (opts.out) parts.push(`--out ${path.relative(REPO, path.resolve(opts.out)) || opts.out}`);
  return parts.join(' ');
}

function section(opts: Options, results: RunResult[], tools: ToolResult[], corpus: { meanBytes: number; genMs: number }, cmd: ServerCommand): string {
  const met = (ok: boolean) => (ok ? 'met' : '**missed**');
  const msgPerS = median(results.map((r) => r.msgPerS));
  const searchable = median(results.map((r) => r.searchableAfterMs));
  const target = opts.size === 'small' ? TARGETS.small.msgPerS : TARGETS.large.msgPerS;
  const fallback = results.some((r) => r.parsePoolFallback);
  const sourceLen = opts.size === 'small' ? 5120 : 102400;
  return [
    `### ${opts.size === 'small' ? 'Small messages (~5 KB)' : 'Large messages (~100 KB, PDF attachment)'}: ${fmt(opts.count)} messages, ${opts.sessions} sessions`,
    '',
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC with \`${commandLine(opts)}\` (server: ${cmd.description}; ` +
      `${Object.keys(opts.env).length ? Object.entries(opts.env).map(([k, v]) => `${k}=${v}`).join(', ') : 'default settings'}). ` +
      `Corpus: mean ${fmt(corpus.meanBytes)} bytes per message, seed ${opts.seed}.`,
    '',
    resultTable(results, opts),
    '',
    `Targets: ≥ ${fmt(target)} msg/s — ${met(msgPerS >= target)} (median ${fmt(msgPerS)}); all searchable ≤ ${TARGETS.searchableS} s after the last 250 — ` +
      `${met(searchable <= TARGETS.searchableS * 1000)} (median ${fmt(searchable)} ms). ` +
      `Parse workers: ${fallback ? '**fell back to parsing on the main thread** (warning in the server log)' : 'started (no fallback warning in the server log)'}. ` +
      `Server error log lines: ${results.map((r) => r.serverErrorLines).join(', ')}.` +
      (results.some((r) => r.otherProcesses.length > 0) ? ` Other busy processes seen while sending: ${[...new Set(results.flatMap((r) => r.otherProcesses))].slice(0, 4).map((p) => `\`${p}\``).join(', ')}.` : ''),
    ...(results.some((r) => r.non250 > 0) ? ['', `Non-250 replies: ${results.flatMap((r) => r.non250Samples).slice(0, 5).join('; ')}`] : []),
    ...(tools.length > 0 ? ['', `For scale, Postfix's own load tools with the same count and sessions (\`-l ${sourceLen}\`: payload of ~${sourceLen / 1024} KiB of repeated X lines, plus ~150 bytes of headers):`, '', toolTable(tools), '',
      `Commands: \`smtp-sink -u nobody 127.0.0.1:PORT 1000\` and \`${tools[0]!.argv.map((a) => path.basename(a)).join(' ').replace(/127\.0\.0\.1:\d+$/, '127.0.0.1:PORT')}\`, ` +
        'against smtp-sink and against a fresh Spindle server per run. smtp-source gives up at the first unexpected reply, so "all 250" means every message was acknowledged.'] : []),
  ].join('\n');
}

function updateDoc(file: string, size: CorpusSize, body: string): void {
  const begin = `<!-- bench:ingest:${size}:begin -->`;
  const end = `<!-- bench:ingest:${size}:end -->`;
  let doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const block = `${begin}\n${body}\n${end}`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a >= 0 && b > a) doc = doc.slice(0, a) + block + doc.slice(b + end.length);
  else doc = `${doc.replace(/\n*$/, '\n\n')}${block}\n`;
  fs.writeFileSync(file, doc);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = parseOptions();
  const workDir = makeWorkDir();
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${sig}: killing the server and cleaning up`);
    killAllServers();
    if (!opts.keep) fs.rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    log(`bench: ${opts.size} × ${opts.count}, ${opts.sessions} sessions, ${opts.runs} run(s); work dir ${workDir}; ${os.cpus().length} CPUs`);
    const g0 = performance.now();
    const mails = generateCorpus({ count: opts.count, size: opts.size, seed: opts.seed });
    const wires = mails.map((m) => toWire(m.raw));
    const genMs = performance.now() - g0;
    const meanBytes = mails.reduce((a, m) => a + m.raw.length, 0) / mails.length;
    log(`corpus: ${opts.count} messages, mean ${Math.round(meanBytes)} bytes, generated in ${Math.round(genMs)} ms`);
    const cmd = serverCommand(opts.server, REPO, workDir);
    log(`server: ${cmd.argv.join(' ')}`);

    const results: RunResult[] = [];
    for (let run = 1; run <= opts.runs; run++) results.push(await benchRun(run, opts, cmd, workDir, mails, wires));

    const tools: ToolResult[] = [];
    if (opts.postfixTools) {
      if (!findTool('smtp-source') || !findTool('smtp-sink')) log('smtp-source / smtp-sink not found (apt-get install postfix): skipping the scale comparison');
      else {
        const len = opts.size === 'small' ? 5120 : 102400;
        for (let run = 1; run <= opts.runs; run++) {
          tools.push(await sourceVsSink(opts, len));
          tools.push(await sourceVsSpindle(opts, cmd, workDir, run, len));
        }
      }
    }

    const body = section(opts, results, tools, { meanBytes, genMs }, cmd);
    process.stdout.write(`\n${body}\n`);
    if (opts.cpuProf) {
      for (const r of results) {
        const dir = path.join(opts.cpuProf, `${opts.size}-run-${r.run}`);
        if (!fs.existsSync(dir)) continue;
        const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
        // Names end in .<pid>.<threadId>.<seq>.cpuprofile: thread 0 is the main thread.
        files.sort();
        const window = { start: r.window.start, end: r.window.last250 };
        const out = files.map((f) => {
          const tid = /\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1];
          return formatSummary(summarizeProfile(f, 25, window), `${tid === '0' ? 'main thread' : `worker thread ${tid}`}, first DATA → last 250 only`, r.count - r.non250);
        }).join('\n\n');
        fs.writeFileSync(path.join(dir, 'summary.md'), out + '\n');
        process.stdout.write(`\nCPU profile summary (${dir}):\n\n${out}\n`);
      }
    }
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ options: opts, corpus: { meanBytes, genMs }, server: cmd.description, results, tools }, null, 2));
    if (opts.out) {
      updateDoc(opts.out, opts.size, body);
      log(`updated ${opts.out}`);
    }
    const failed = results.some((r) => r.non250 > 0 || !r.searchFound || !Number.isFinite(r.searchableAfterMs));
    if (failed) process.exitCode = 1;
  } finally {
    killAllServers();
    if (opts.keep) log(`kept ${workDir}`);
    else fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  killAllServers();
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
