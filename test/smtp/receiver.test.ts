import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { buildAllowList } from '../../src/smtp/server.js';
import { buildMessage, startTestArchive, tempDir, type TestArchive } from '../helpers/archive.js';
import { sendMail } from '../helpers/smtp-client.js';

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    console.warn('[skip] openssl not installed: the STARTTLS test is skipped');
    return false;
  }
})();

let archive: TestArchive | null = null;
afterEach(async () => {
  await archive?.close();
  archive = null;
});

/** Reads one complete SMTP reply (all continuation lines). */
function readReply(socket: net.Socket | tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\r\n').filter(Boolean);
      const last = lines.at(-1);
      if (buf.endsWith('\r\n') && last && /^\d{3} /.test(last)) {
        socket.off('data', onData);
        resolve(buf);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

async function dial(port: number): Promise<{ socket: net.Socket; greeting: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  return { socket, greeting: await readReply(socket) };
}

describe('SMTP receiver policy', () => {
  it('answers 554 at connect to a client outside SPINDLE_SMTP_ALLOW', async () => {
    archive = await startTestArchive({ SPINDLE_SMTP_ALLOW: '192.0.2.0/24' });
    const { socket, greeting } = await dial(archive.smtp.port);
    expect(greeting).toMatch(/^554 /);
    socket.destroy();
  });

  it('matches allow-list entries by network, including IPv4-mapped IPv6', () => {
    const allowed = buildAllowList(['127.0.0.0/8', '::1/128', '192.0.2.7']);
    expect(allowed('127.4.5.6')).toBe(true);
    expect(allowed('::ffff:127.0.0.1')).toBe(true);
    expect(allowed('::1')).toBe(true);
    expect(allowed('192.0.2.7')).toBe(true);
    expect(allowed('192.0.2.8')).toBe(false);
    expect(allowed('10.0.0.1')).toBe(false);
    expect(() => buildAllowList(['not-a-net'])).toThrow(/SPINDLE_SMTP_ALLOW/);
    expect(() => buildAllowList(['10.0.0.0/33'])).toThrow(/prefix length/);
  });

  it('answers 421 beyond the concurrent connection limit', async () => {
    archive = await startTestArchive({ SPINDLE_SMTP_MAX_CLIENTS: '2' });
    const a = await dial(archive.smtp.port);
    const b = await dial(archive.smtp.port);
    const c = await dial(archive.smtp.port);
    expect(a.greeting).toMatch(/^220 /);
    expect(b.greeting).toMatch(/^220 /);
    expect(c.greeting).toMatch(/^421 /);
    for (const s of [a, b, c]) s.socket.destroy();
  });

  it('advertises DSN and SIZE, and not AUTH; takes NOTIFY and ORCPT on RCPT', async () => {
    archive = await startTestArchive();
    const { socket } = await dial(archive.smtp.port);
    socket.write('EHLO mx.test\r\n');
    const ehlo = await readReply(socket);
    expect(ehlo).toMatch(/250[- ]DSN/);
    expect(ehlo).toMatch(/250[- ]SIZE 50000000/);
    expect(ehlo).not.toMatch(/AUTH/);
    expect(ehlo).not.toMatch(/STARTTLS/);
    socket.write('MAIL FROM:<a@example.com>\r\n');
    expect(await readReply(socket)).toMatch(/^250 /);
    socket.write('RCPT TO:<archive@localhost> NOTIFY=NEVER ORCPT=rfc822;bob+2Bx@example.com\r\n');
    expect(await readReply(socket)).toMatch(/^250 /);
    socket.write('QUIT\r\n');
    socket.destroy();
  });

  it.skipIf(!hasOpenssl)('offers STARTTLS when a certificate is configured and archives over TLS', async () => {
    const dir = tempDir();
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=spindle.test'], { stdio: 'ignore' });
    archive = await startTestArchive({ SPINDLE_SMTP_TLS_CERT: cert, SPINDLE_SMTP_TLS_KEY: key });
    const { socket } = await dial(archive.smtp.port);
    socket.write('EHLO mx.test\r\n');
    expect(await readReply(socket)).toMatch(/250[- ]STARTTLS/);
    socket.write('STARTTLS\r\n');
    expect(await readReply(socket)).toMatch(/^220 /);
    const secure = tls.connect({ socket, rejectUnauthorized: false, servername: 'spindle.test' });
    await new Promise((r) => secure.once('secureConnect', r));
    const step = async (line: string, expectCode: RegExp) => {
      secure.write(`${line}\r\n`);
      expect(await readReply(secure), line).toMatch(expectCode);
    };
    await step('EHLO mx.test', /^250/);
    await step('MAIL FROM:<a@example.com>', /^250 /);
    await step('RCPT TO:<archive@localhost>', /^250 /);
    await step('DATA', /^354 /);
    await step(`${buildMessage({ subject: 'over tls' })}.`, /^250 2\.0\.0 Archived as seq 1/);
    secure.destroy();
    await archive.indexer.idle();
    const detail = await archive.api<{ deliveries: Array<{ tls: boolean }> }>(`/api/messages/${(await archive.api<{ items: Array<{ id: number }> }>('/api/search?q=tls')).body.items[0]!.id}`);
    expect(detail.body.deliveries[0]!.tls).toBe(true);
  });

  it('trusts X-Original-To only when configured', async () => {
    const raw = buildMessage({ subject: 'trusted header', to: ['list@example.com'], extraHeaders: ['X-Original-To: hidden@example.com'] });
    for (const [setting, expected] of [['', 0], ['x-original-to', 1]] as const) {
      archive = await startTestArchive({ SPINDLE_TRUSTED_ENVELOPE_HEADER: setting });
      expect((await sendMail(archive.smtp.port, { from: 'a@example.com', to: ['archive@localhost'] }, raw)).code).toBe(250);
      await archive.indexer.idle();
      const res = await archive.api<{ total: number }>(`/api/search?q=${encodeURIComponent('bcc:hidden@example.com')}`);
      expect(res.body.total, `setting ${JSON.stringify(setting)}`).toBe(expected);
      await archive.close();
      archive = null;
    }
  });
});
