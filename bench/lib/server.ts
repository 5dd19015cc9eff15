import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs Spindle as a child process for the benchmark: a compiled snapshot of src/ (so that edits
 * made while a benchmark runs do not change what is measured), a fresh data directory, logs to a
 * file (so that the load generator does not spend CPU reading them), and a guaranteed kill.
 */

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: whatever happens to the benchmark, no server outlives it.
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

export interface ServerCommand {
  /** Executable and leading arguments, e.g. ['node', '/tmp/x/dist/cli/main.js']. */
  argv: string[];
  description: string;
}

/**
 * Compiles src/ with tsconfig.build.json into a temp directory that looks like the package root
 * (dist/, and symlinks to package.json, migrations/ and node_modules/), and returns how to run it.
 */
export function buildSnapshot(repoRoot: string, workDir: string): ServerCommand {
  const snap = path.join(workDir, 'snapshot');
  fs.mkdirSync(snap, { recursive: true });
  const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');
  try {
    execFileSync(tsc, ['-p', path.join(repoRoot, 'tsconfig.build.json'), '--outDir', path.join(snap, 'dist')], { cwd: repoRoot, stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    // tsc emits even with type errors (noEmitOnError is off); go on if the entry point exists.
    if (!fs.existsSync(path.join(snap, 'dist', 'cli', 'main.js'))) throw new Error(`tsc failed:\n${out}`);
    process.stderr.write(`warning: tsc reported errors (another engineer's work in progress?); using the emitted JS anyway:\n${out.split('\n').slice(0, 10).join('\n')}\n`);
  }
  for (const name of ['package.json', 'migrations', 'node_modules']) {
    const link = path.join(snap, name);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(repoRoot, name), link);
  }
  return { argv: [process.execPath, path.join(snap, 'dist', 'cli', 'main.js')], description: `node <snapshot of src/ built with tsconfig.build.json>/dist/cli/main.js` };
}

export function serverCommand(kind: 'snapshot' | 'dist' | 'tsx', repoRoot: string, workDir: string): ServerCommand {
  if (kind === 'snapshot') return buildSnapshot(repoRoot, workDir);
  if (kind === 'dist') {
    const entry = path.join(repoRoot, 'dist', 'cli', 'main.js');
    if (!fs.existsSync(entry)) throw new Error(`${entry} does not exist: run npm run build, or use --server snapshot`);
    return { argv: [process.execPath, entry], description: 'node dist/cli/main.js' };
  }
  return { argv: [process.execPath, '--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')], description: 'node --import tsx src/cli/main.ts' };
}

export interface StartOptions {
  command: ServerCommand;
  dataDir: string;
  logFile: string;
  /** Extra node flags for the server process (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface Stats {
  messages: number;
  deliveries: number;
  duplicates: number;
  raw_bytes: number;
  stored_bytes: number;
  index_lag: { records: number; seconds: number };
}

export interface RunningServer {
  pid: number;
  smtpPort: number;
  httpPort: number;
  dataDir: string;
  logFile: string;
  stats(token: string): Promise<Stats>;
  search(token: string, q: string): Promise<{ total: number; items: Array<{ id: number; subject: string }>; ms: number }>;
  /** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: string | null }>;
  exited(): boolean;
}

function withNodeArgs(argv: string[], nodeArgs: string[]): string[] {
  const [exe, ...rest] = argv;
  return [exe!, ...nodeArgs, ...rest];
}

/** `spindle token create --role auditor`; returns the secret. Runs before the server starts. */
export function createToken(command: ServerCommand, dataDir: string): string {
  const [exe, ...args] = command.argv;
  const out = execFileSync(exe!, [...args, '--data-dir', dataDir, 'token', 'create', '--role', 'auditor', '--name', 'bench'], {
    env: { ...process.env, SPINDLE_DATA_DIR: dataDir, SPINDLE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  const m = /^\s+(spx_\S+)/m.exec(out);
  if (!m) throw new Error(`token create printed no token:\n${out}`);
  return m[1]!;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  installExitHook();
  const logFd = fs.openSync(opts.logFile, 'a');
  const argv = withNodeArgs(opts.command.argv, opts.nodeArgs ?? []);
  const child = spawn(argv[0]!, [...argv.slice(1), 'serve'], {
    env: {
      ...process.env,
      SPINDLE_DATA_DIR: opts.dataDir,
      SPINDLE_SMTP_HOST: '127.0.0.1',
      SPINDLE_HTTP_HOST: '127.0.0.1',
      SPINDLE_SMTP_PORT: '0',
      SPINDLE_HTTP_PORT: '0',
      SPINDLE_LOG_FORMAT: 'json',
      SPINDLE_LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  live.add(child);
  let exitInfo: { code: number | null; signal: string | null } | null = null;
  const exitP = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      resolve(exitInfo);
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);

  // Wait for {"event":"listening", "smtp":{port}, "http":{port}} in the log.
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  let ports: { smtp: number; http: number } | null = null;
  while (!ports) {
    if (exitInfo) throw new Error(`server exited during start-up (${JSON.stringify(exitInfo)}):\n${tail(opts.logFile)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not log "listening" in time:\n${tail(opts.logFile)}`);
    }
    await sleep(50);
    const text = fs.readFileSync(opts.logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"listening"')) continue;
      try {
        const j = JSON.parse(line) as { event?: string; smtp?: { port: number }; http?: { port: number } };
        if (j.event === 'listening' && j.smtp && j.http) ports = { smtp: j.smtp.port, http: j.http.port };
      } catch {
        /* partial line */
      }
    }
    // With SPINDLE_LOG_LEVEL above info there is no "listening" line; the banner on stdout has the ports too.
    const smtpBanner = /SMTP journal listener\s+smtp:\/\/[^\s]*:(\d+)/.exec(text);
    const httpBanner = /HTTP API\s+http:\/\/[^\s]*:(\d+)\//.exec(text);
    if (!ports && smtpBanner && httpBanner) ports = { smtp: Number(smtpBanner[1]), http: Number(httpBanner[1]) };
  }
  const { smtp, http } = ports;
  const base = `http://127.0.0.1:${http}`;

  async function getJson<T>(token: string, url: string): Promise<T> {
    const res = await fetch(base + url, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.text();
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${body}`);
    return JSON.parse(body) as T;
  }

  return {
    pid,
    smtpPort: smtp,
    httpPort: http,
    dataDir: opts.dataDir,
    logFile: opts.logFile,
    stats: (token) => getJson<Stats>(token, '/api/stats'),
    async search(token, q) {
      const t = performance.now();
      const r = await getJson<{ total: number; items: Array<{ id: number; subject: string }> }>(token, `/api/search?q=${encodeURIComponent(q)}&limit=10`);
      return { ...r, ms: performance.now() - t };
    },
    async stop(graceMs = 20_000) {
      if (exitInfo) return exitInfo;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exitP;
      clearTimeout(timer);
      return r;
    },
    exited: () => exitInfo !== null,
  };
}

/** Kills every server this process started (used by the SIGINT handler). */
export function killAllServers(): void {
  for (const c of live) c.kill('SIGKILL');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** VmHWM / VmRSS in bytes. */
export function memoryOf(pid: number): { hwm: number; rss: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return null;
  }
}

export interface CpuTimes {
  /** Seconds of user+system CPU of the whole process (all threads). */
  total: number;
  /** Of which the main (event loop) thread. */
  main: number;
  /** Other threads (libuv pool: gzip, fs, fsync; worker threads; V8 GC/compiler helpers), busiest first. */
  others: number[];
}

export function cpuOf(pid: number): CpuTimes | null {
  const hz = 100; // USER_HZ on Linux
  const read = (file: string): number => {
    const s = fs.readFileSync(file, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / hz;
  };
  try {
    const total = read(`/proc/${pid}/stat`);
    let main = 0;
    const others: number[] = [];
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const t = read(`/proc/${pid}/task/${tid}/stat`);
      if (Number(tid) === pid) main = t;
      else others.push(t);
    }
    others.sort((a, b) => b - a);
    return { total, main, others };
  } catch {
    return null;
  }
}

/** Disk usage (allocated) and apparent size of a directory, in bytes. */
export function diskUsage(dir: string): { allocated: number; apparent: number } {
  const du = (extra: string[]) => Number(execFileSync('du', ['-s', '-B1', ...extra, dir]).toString().split(/\s/)[0]);
  return { allocated: du([]), apparent: du(['--apparent-size']) };
}

export function makeWorkDir(prefix = 'spindle-bench-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Whole-machine CPU seconds from /proc/stat: busy (everything but idle and iowait) and total. */
export function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / 100, total: (busy + idle + iowait) / 100 };
}

/** Other processes on the machine using CPU right now (for the record: the machine may be shared). */
export function busiestOtherProcesses(exclude: number[], limit = 3): string[] {
  try {
    const out = execFileSync('ps', ['-eo', 'pid,pcpu,args', '--sort=-pcpu', '--no-headers']).toString().split('\n');
    return out
      .map((l) => l.trim())
      .filter((l) => l && !exclude.includes(Number(l.split(/\s+/)[0])) && Number(l.split(/\s+/)[1]) >= 5 && !/\bps -eo\b|bench\/ingest\.ts/.test(l))
      .slice(0, limit)
      .map((l) => l.slice(0, 100));
  } catch {
    return [];
  }
}
