import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import {
  postfixAvailable,
  postfixUnavailableReason,
  startPostfix,
  type PostfixInstance,
  type PostfixOptions,
} from './helpers/postfix.js';

const available = postfixAvailable();
if (!available) console.warn(`[skip] postfix not installed: ${postfixUnavailableReason()} — Postfix end-to-end tests skipped`);

interface Transaction {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
}

interface Archive {
  port: number;
  transactions: Transaction[];
  close(): Promise<void>;
}

async function startArchive(): Promise<Archive> {
  const transactions: Transaction[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    banner: 'test archive',
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const env = session.envelope;
        transactions.push({
          mailFrom: env.mailFrom ? env.mailFrom.address : '',
          rcptTo: env.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    transactions,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const journal = (kind: 'rcpt' | 'from', addr: string): string => {
  const at = addr.lastIndexOf('@');
  return `journal+${kind}.${addr.slice(0, at)}=${addr.slice(at + 1)}@archive.example`;
};

const headerBlock = (raw: Buffer): string => {
  const s = raw.toString('utf8');
  const end = s.indexOf('\r\n\r\n');
  return end >= 0 ? s.slice(0, end) : s;
};

describe('Postfix test harness', () => {
  let archive: Archive | undefined;
  let pf: PostfixInstance | undefined;

  beforeEach(async () => {
    if (available) archive = await startArchive();
  });

  afterEach(async () => {
    await pf?.stop();
    pf = undefined;
    await archive?.close();
    archive = undefined;
  });

  const start = async (o: Omit<PostfixOptions, 'archiveHost' | 'archivePort'>): Promise<PostfixInstance> => {
    const t0 = Date.now();
    const p = await startPostfix({ archiveHost: '127.0.0.1', archivePort: archive!.port, ...o });
    pf = p;
    // Runs after afterEach (which stops Postfix); log() keeps the maillog after stop().
    onTestFailed(async () => {
      console.error(`--- Postfix maillog (${p.dir}, ${o.mode}) ---\n${await p.log()}`);
    });
    console.info(`[postfix] started ${o.mode} on port ${p.smtpPort} in ${Date.now() - t0} ms`);
    return p;
  };

  const sendAndWait = async (p: PostfixInstance, msg: Parameters<PostfixInstance['send']>[0]): Promise<void> => {
    const t0 = Date.now();
    await p.send(msg);
    await p.waitForQueueEmpty(15_000);
    console.info(`[postfix] send + delivery in ${Date.now() - t0} ms`);
  };

  it.skipIf(!available)('envelope mode: one transaction naming every recipient (Bcc included) and the sender', async () => {
    const p = await start({ mode: 'envelope' });
    await sendAndWait(p, {
      from: 'sender@example.org',
      to: ['alice@example.com'],
      cc: ['carol@example.com'],
      bcc: ['bob@example.com'],
      subject: 'envelope mode',
    });

    expect(archive!.transactions).toHaveLength(1);
    const t = archive!.transactions[0]!;
    expect(t.mailFrom).toBe('sender@example.org');
    expect([...t.rcptTo].sort()).toEqual(
      [
        journal('rcpt', 'alice@example.com'),
        journal('rcpt', 'carol@example.com'),
        journal('rcpt', 'bob@example.com'),
        journal('from', 'sender@example.org'),
      ].sort(),
    );
    const text = t.raw.toString('utf8');
    expect(text).not.toMatch(/bob@example\.com/i);
    expect(headerBlock(t.raw)).not.toMatch(/^bcc:/im);
    expect(headerBlock(t.raw)).toMatch(/^To: alice@example\.com$/m);
    expect(headerBlock(t.raw)).toMatch(/^Cc: carol@example\.com$/m);
    expect(headerBlock(t.raw)).toMatch(/^Received: from client\.test\.example/m);
    expect(await p.log()).toMatch(/relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/);
  });

  it.skipIf(!available)('always_bcc mode: one transaction to archive@archive.example only', async () => {
    const p = await start({ mode: 'always_bcc' });
    await sendAndWait(p, {
      from: 'sender@example.org',
      to: ['alice@example.com'],
      cc: ['carol@example.com'],
      bcc: ['bob@example.com'],
      subject: 'always_bcc mode',
    });

    expect(archive!.transactions).toHaveLength(1);
    const t = archive!.transactions[0]!;
    expect(t.mailFrom).toBe('sender@example.org');
    expect(t.rcptTo).toEqual(['archive@archive.example']);
    expect(t.raw.toString('utf8')).not.toMatch(/bob@example\.com/i);
    expect(headerBlock(t.raw)).not.toMatch(/^bcc:/im);
  });

  it.skipIf(!available)('envelope mode: an archive-domain address is not BCC-encoded again', async () => {
    const p = await start({ mode: 'envelope' });
    const direct = journal('rcpt', 'dave@example.com');
    await sendAndWait(p, { from: 'sender@example.org', to: [direct], subject: 'direct to archive' });

    expect(archive!.transactions).toHaveLength(1);
    expect([...archive!.transactions[0]!.rcptTo].sort()).toEqual([direct, journal('from', 'sender@example.org')].sort());
  });

  it.skipIf(!available)('envelope mode with recipientLimit 2: split into byte-identical deliveries', async () => {
    const p = await start({ mode: 'envelope', recipientLimit: 2 });
    const rcpts = ['r1@example.com', 'r2@example.com', 'r3@example.com', 'r4@example.com', 'r5@example.com'];
    await sendAndWait(p, { from: 'sender@example.org', to: rcpts.slice(0, 3), cc: rcpts.slice(3), subject: 'split' });

    const ts = archive!.transactions;
    // 5 rcpt + 1 from journal addresses, at most 2 per transaction.
    expect(ts).toHaveLength(3);
    for (const t of ts) {
      expect(t.rcptTo.length).toBeLessThanOrEqual(2);
      expect(t.mailFrom).toBe('sender@example.org');
      expect(t.raw.equals(ts[0]!.raw)).toBe(true);
    }
    expect(ts.flatMap((t) => t.rcptTo).sort()).toEqual(
      [...rcpts.map((r) => journal('rcpt', r)), journal('from', 'sender@example.org')].sort(),
    );
  });
});
