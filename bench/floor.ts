/**
 * The floor: what the libraries the issue prescribes cost per message on this machine, each alone,
 * with nothing of Spindle's around them. Their sum is a lower bound on Spindle's CPU per message,
 * so it tells whether a throughput target is reachable on this machine at all.
 *
 *   npx tsx bench/floor.ts --size small|large [--count N]
 *
 * Stages (same corpus as bench/ingest.ts):
 *  - smtp:   smtp-server with Spindle's options, messages read and dropped (child process), driven
 *            by the benchmark's SMTP client over 20 sessions; server and client CPU are both counted,
 *            since both share the machine in bench/ingest.ts.
 *  - parse:  mailparser through Spindle's parseMail (the worker's job), 16 messages in flight.
 *  - index:  the archive writer's SQLite + FTS5 transaction, batches of 128 (the indexer's job).
 *  - store:  sha256 and gzip (level 6) of the message bytes.
 * Each runs after a warm-up of 10% of the messages, which is not counted.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { createArchiveWriter, type IndexItem } from '../src/db/archive-writer.js';
import { openDatabase } from '../src/db/database.js';
import { parseMail } from '../src/ingest/parse.js';
import type { ParsedMail } from '../src/ingest/types.js';
import { createArchiveAddressMatcher } from '../src/journal/archive-address.js';
import { recoverEnvelope } from '../src/journal/envelope.js';
import { GENESIS, type LedgerRecord } from '../src/ledger/records.js';
import { generateCorpus, type BenchMessage } from './lib/corpus.js';
import { cpuOf } from './lib/server.js';
import { SmtpClient, toWire } from './lib/smtp-client.js';

const { values } = parseArgs({
  options: { size: { type: 'string', default: 'small' }, count: { type: 'string' }, sessions: { type: 'string', default: '20' } },
});
const size = values.size === 'large' ? 'large' : 'small';
const count = Number(values.count ?? (size === 'small' ? 10_000 : 2_000));
const sessions = Number(values.sessions);
const warm = Math.ceil(count / 10);

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

async function smtpFloor(mails: BenchMessage[]): Promise<{ serverUs: number; clientUs: number; rate: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'lib/floor-smtp-server.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
    });
    const wires = mails.map((m) => toWire(m.raw));
    const clients = await Promise.all(Array.from({ length: sessions }, () => SmtpClient.connect(port)));
    const sendRange = async (from: number, to: number): Promise<void> => {
      let next = from;
      await Promise.all(clients.map(async (c) => {
        for (let i = next++; i < to; i = next++) {
          const r = await c.send(mails[i]!.mailFrom, ['archive@localhost'], wires[i]!);
          if (r.code !== 250) throw new Error(`floor server answered ${r.code} ${r.text}`);
        }
      }));
    };
    await sendRange(0, warm);
    const s0 = cpuOf(child.pid!)!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sendRange(warm, mails.length);
    const secs = (performance.now() - t0) / 1000;
    const clientMs = cpuMs(process.cpuUsage(c0));
    const s1 = cpuOf(child.pid!)!;
    await Promise.all(clients.map((c) => c.quit()));
    const n = mails.length - warm;
    return { serverUs: ((s1.total - s0.total) * 1e6) / n, clientUs: (clientMs * 1000) / n, rate: n / secs };
  } finally {
    child.kill('SIGTERM');
  }
}

async function parseFloor(mails: BenchMessage[]): Promise<{ us: number; parsed: ParsedMail[] }> {
  const opts = { headerNames: [], maxTextChars: 512 * 1024 };
  const parsed: ParsedMail[] = new Array<ParsedMail>(mails.length);
  const run = async (from: number, to: number): Promise<void> => {
    let next = from;
    await Promise.all(Array.from({ length: 16 }, async () => {
      for (let i = next++; i < to; i = next++) parsed[i] = await parseMail(mails[i]!.raw, opts);
    }));
  };
  await run(0, warm);
  const c0 = process.cpuUsage();
  await run(warm, mails.length);
  return { us: (cpuMs(process.cpuUsage(c0)) * 1000) / (mails.length - warm), parsed };
}

function indexFloor(mails: BenchMessage[], parsed: ParsedMail[]): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spindle-floor-'));
  const db = openDatabase({ file: path.join(dir, 'spindle.db') });
  try {
    const writer = createArchiveWriter(db);
    const matcher = createArchiveAddressMatcher(['archive@localhost']);
    const items: IndexItem[] = mails.map((m, i) => {
      const p = parsed[i]!;
      const record: LedgerRecord = {
        type: 'delivery', blob: createHash('sha256').update(m.raw).digest('hex'), size: m.raw.length, stored: m.raw.length,
        env: { mailFrom: m.mailFrom, rcpts: [{ address: 'archive@localhost' }], client: '127.0.0.1', helo: 'bench', session: 's', tls: false },
        seq: i + 1, ts: new Date(Date.UTC(2024, 5, 1) + i * 1000).toISOString(), prev: GENESIS,
      };
      const envelope = recoverEnvelope(
        { mailFrom: m.mailFrom, rcpts: [{ address: 'archive@localhost', orcpt: null }], headers: { from: p.from, sender: p.sender, to: p.to, cc: p.cc, bcc: p.bcc } },
        matcher,
      );
      return { record, parsed: p, envelope };
    });
    const apply = (from: number, to: number): void => {
      for (let i = from; i < to; i += 128) writer.applyBatch(items.slice(i, Math.min(to, i + 128)));
    };
    apply(0, warm);
    const c0 = process.cpuUsage();
    apply(warm, items.length);
    return (cpuMs(process.cpuUsage(c0)) * 1000) / (items.length - warm);
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function storeFloor(mails: BenchMessage[]): number {
  const one = (m: BenchMessage): void => {
    createHash('sha256').update(m.raw).digest('hex');
    zlib.gzipSync(m.raw, { level: 6 });
  };
  mails.slice(0, warm).forEach(one);
  const c0 = process.cpuUsage();
  mails.slice(warm).forEach(one);
  return (cpuMs(process.cpuUsage(c0)) * 1000) / (mails.length - warm);
}

const mails = generateCorpus({ count, size, seed: 20240901 });
const meanBytes = mails.reduce((s, m) => s + m.raw.length, 0) / mails.length;
console.log(`floor: ${size} × ${count} (mean ${Math.round(meanBytes)} bytes), ${sessions} sessions, ${os.cpus().length} CPUs, node ${process.version}`);
const smtp = await smtpFloor(mails);
const parse = await parseFloor(mails);
const index = indexFloor(mails, parse.parsed);
const store = storeFloor(mails);
const rows: Array<[string, number]> = [
  ['smtp-server (server side), message dropped', smtp.serverUs],
  ['SMTP load generator (client side)', smtp.clientUs],
  ['mailparser (parseMail)', parse.us],
  ['SQLite + FTS5 (archive writer, batches of 128)', index.valueOf()],
  ['sha256 + gzip level 6', store],
];
const total = rows.reduce((s, [, v]) => s + v, 0);
console.log('\n| stage | CPU µs per message |\n|---|---:|');
for (const [name, v] of rows) console.log(`| ${name} | ${Math.round(v)} |`);
console.log(`| **sum** | **${Math.round(total)}** |`);
const cores = os.cpus().length;
console.log(`\nsmtp-server floor alone: ${Math.round(smtp.rate)} msg/s over ${sessions} sessions.`);
console.log(`Upper bound from the sum on ${cores} cores, with perfect parallelism and nothing else: ${Math.round((cores * 1e6) / total)} msg/s.`);
