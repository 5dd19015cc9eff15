import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { sleep } from './server.js';

/** Postfix's load tools (Debian package `postfix`), used for scale: a C sink and a C source. */
const SBIN = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findTool(name: 'smtp-sink' | 'smtp-source'): string | null {
  for (const dir of SBIN) {
    const p = `${dir}/${name}`;
    if (fs.existsSync(p)) return p;
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

export interface Sink {
  port: number;
  argv: string[];
  stop(): Promise<void>;
}

/** smtp-sink on a free loopback port; discards everything. As root it must drop privileges (-u nobody). */
export async function startSink(): Promise<Sink> {
  const bin = findTool('smtp-sink');
  if (!bin) throw new Error('smtp-sink not found (apt-get install postfix)');
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '1000'];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.on('exit', () => child.kill('SIGKILL'));
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; smtp-sink said: ${stderr}`);
  }
  return {
    port,
    argv: [bin, ...args],
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface SourceResult {
  argv: string[];
  seconds: number;
  exitCode: number | null;
  stderr: string;
}

/**
 * smtp-source -s K -m N -l L -d: N messages of L payload bytes (plus its few headers) over K
 * persistent sessions. It stops at the first reply it does not expect unless -A is given, so exit
 * code 0 means every message got 250.
 */
export async function runSource(opts: { port: number; sessions: number; count: number; length: number; to: string; timeoutMs?: number }): Promise<SourceResult> {
  const bin = findTool('smtp-source');
  if (!bin) throw new Error('smtp-source not found (apt-get install postfix)');
  const args = ['-s', String(opts.sessions), '-m', String(opts.count), '-l', String(opts.length), '-d',
    '-f', 'bench@localhost', '-t', opts.to, '-M', 'bench.localhost', `127.0.0.1:${opts.port}`];
  const started = performance.now();
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(timer);
  return { argv: [bin, ...args], seconds: (performance.now() - started) / 1000, exitCode, stderr: stderr.trim() };
}
