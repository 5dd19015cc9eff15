/**
 * End to end against a real, throwaway Postfix: the configuration from postfixConfigParts() is
 * installed in a temp dir, mail is injected with Postfix's sendmail, and a raw SMTP sink stands in
 * for Spindle's listener and records exactly what Postfix sends (RCPT paths, ORCPT, bytes).
 * Then the matcher and recoverEnvelope() must recover who the message was for.
 *
 * Needs root and the Debian "postfix" package; skipped with a notice otherwise.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser, type AddressObject } from 'mailparser';
import type { Address } from '../../src/ingest/types.js';
import {
  createArchiveAddressMatcher,
  encodeJournalAddress,
  parseOrcpt,
} from '../../src/journal/archive-address.js';
import { recoverEnvelope, type EnvelopeInput, type RecoveredEnvelope } from '../../src/journal/envelope.js';
import { postfixConfigParts } from '../../src/journal/postfix-config.js';

const POSTFIX = '/usr/sbin/postfix';
const SENDMAIL = '/usr/sbin/sendmail';
const POSTCONF = '/usr/sbin/postconf';

function skipReason(): string | null {
  if (!existsSync(POSTFIX) || !existsSync(SENDMAIL) || !existsSync(POSTCONF)) return 'Postfix is not installed';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const id = spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' });
  if (id.status !== 0) return 'there is no "postfix" user';
  return null;
}
const SKIP = skipReason();
if (SKIP) {
  console.warn(`[test/journal/postfix-e2e] skipping the real-Postfix end-to-end test: ${SKIP}.`);
}

// ---------------------------------------------------------------------------------------------
// A minimal SMTP sink that records the raw envelope.
// ---------------------------------------------------------------------------------------------

interface SinkRcpt {
  path: string;
  params: Record<string, string>;
}
interface SinkTxn {
  mailFrom: string;
  rcpts: SinkRcpt[];
  data: Buffer;
}

/** Splits `<path> PARAM=V ...` honouring quotes and backslashes inside the path. */
function parsePathArg(arg: string): { path: string; params: Record<string, string> } {
  const s = arg.trim();
  let i = 1;
  let inQuote = false;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '"') inQuote = !inQuote;
    else if (c === '>' && !inQuote) break;
  }
  const path = s.slice(1, i);
  const params: Record<string, string> = {};
  for (const p of s.slice(i + 1).trim().split(/\s+/).filter(Boolean)) {
    const eq = p.indexOf('=');
    params[(eq === -1 ? p : p.slice(0, eq)).toUpperCase()] = eq === -1 ? '' : p.slice(eq + 1);
  }
  return { path, params };
}

function startSink(): Promise<{ port: number; txns: SinkTxn[]; close: () => Promise<void> }> {
  const txns: SinkTxn[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let inData = false;
    let cur: { mailFrom: string; rcpts: SinkRcpt[] } | null = null;
    const reply = (s: string) => sock.write(`${s}\r\n`);
    reply('220 sink ESMTP');
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end === -1) return;
          const raw = buf.subarray(0, end + 2).toString('latin1');
          buf = buf.subarray(end + 5);
          inData = false;
          const data = Buffer.from(raw.replace(/^\.\./gm, '.'), 'latin1');
          if (cur) txns.push({ ...cur, data });
          cur = null;
          reply('250 2.0.0 Ok: stored');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl === -1) return;
        const line = buf.subarray(0, nl).toString('utf8');
        buf = buf.subarray(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-sink\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES');
        else if (verb === 'HELO' || verb === 'NOOP') reply('250 Ok');
        else if (verb === 'MAIL') {
          cur = { mailFrom: parsePathArg(line.slice(line.indexOf(':') + 1)).path, rcpts: [] };
          reply('250 2.1.0 Ok');
        } else if (verb === 'RCPT') {
          cur?.rcpts.push(parsePathArg(line.slice(line.indexOf(':') + 1)));
          reply('250 2.1.5 Ok');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'RSET') {
          cur = null;
          reply('250 Ok');
        } else if (verb === 'QUIT') {
          reply('221 Bye');
          sock.end();
          return;
        } else reply('502 5.5.2 Error: command not recognized');
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        txns,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// A throwaway Postfix instance.
// ---------------------------------------------------------------------------------------------

const MASTER_CF = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ARCHIVE_DOMAIN = 'archive.example';
const matcher = createArchiveAddressMatcher([`archive@${ARCHIVE_DOMAIN}`]);

function flatten(a: AddressObject | AddressObject[] | undefined): Address[] {
  const out: Address[] = [];
  const walk = (list: Array<{ address?: string; name?: string; group?: unknown[] }>) => {
    for (const e of list) {
      if (e.group) walk(e.group as typeof list);
      else if (e.address) out.push({ address: e.address, name: e.name ?? '' });
    }
  };
  for (const obj of Array.isArray(a) ? a : a ? [a] : []) walk(obj.value);
  return out;
}

async function recover(txn: SinkTxn): Promise<RecoveredEnvelope> {
  const mail = await simpleParser(txn.data);
  const input: EnvelopeInput = {
    mailFrom: txn.mailFrom,
    rcpts: txn.rcpts.map((r) => ({ address: r.path, orcpt: r.params.ORCPT ?? null })),
    headers: {
      from: flatten(mail.from),
      sender: [],
      to: flatten(mail.to),
      cc: flatten(mail.cc),
      bcc: flatten(mail.bcc),
    },
  };
  return recoverEnvelope(input, matcher);
}

describe.skipIf(SKIP !== null)('journal copies from a real Postfix', () => {
  let dir = '';
  let conf = '';
  let sink: Awaited<ReturnType<typeof startSink>>;

  const postfix = (...args: string[]) => spawnSync(POSTFIX, ['-c', conf, ...args], { encoding: 'utf8' });
  const maillog = () => (existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : '');
  const send = (sender: string, rcpts: string[], message: string) => {
    const r = spawnSync(SENDMAIL, ['-C', conf, '-f', sender, '--', ...rcpts], {
      input: message.replace(/\n/g, '\r\n'),
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`sendmail failed: ${r.stderr}`);
  };

  beforeAll(async () => {
    sink = await startSink();
    dir = mkdtempSync(join(tmpdir(), 'spindle-journal-e2e-'));
    chmodSync(dir, 0o755); // mkdtemp makes it 0700; the postfix user must reach data/ and queue/
    conf = join(dir, 'conf');
    for (const d of ['conf', 'queue', 'data']) mkdirSync(join(dir, d));
    const uid = Number(spawnSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).stdout.trim());
    chownSync(join(dir, 'data'), uid, gid);

    const parts = postfixConfigParts({ archiveDomain: ARCHIVE_DOMAIN, smtpHost: '127.0.0.1', smtpPort: sink.port });
    writeFileSync(join(conf, 'spindle_rcpt'), parts.rcptMap!);
    writeFileSync(join(conf, 'spindle_from'), parts.fromMap!);
    const main = [
      'compatibility_level = 3.6',
      `queue_directory = ${join(dir, 'queue')}`,
      `data_directory = ${join(dir, 'data')}`,
      `maillog_file = ${join(dir, 'maillog')}`,
      `maillog_file_prefixes = ${dir}`,
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'myhostname = mx.example.com',
      'mydomain = example.com',
      'myorigin = example.com',
      'mydestination =',
      'alias_maps =',
      'alias_database =',
      'smtp_dns_support_level = disabled',
      'default_transport = discard',
      'relay_transport = discard',
      'local_transport = discard',
      'virtual_transport = discard',
      ...parts.mainCf.map((l) => l.replaceAll('/etc/postfix/', `${conf}/`)),
    ];
    writeFileSync(join(conf, 'main.cf'), main.join('\n') + '\n');
    writeFileSync(join(conf, 'master.cf'), MASTER_CF.trimStart() + parts.masterCf.join('\n') + '\n');

    // Postfix waits ~2 s before reading a configuration file changed in the last second or two
    const past = new Date(Date.now() - 60_000);
    for (const f of ['main.cf', 'master.cf', 'spindle_rcpt', 'spindle_from']) utimesSync(join(conf, f), past, past);

    const started = postfix('start');
    if (started.status !== 0) {
      throw new Error(`postfix start failed: ${started.stderr}\n${maillog()}`);
    }
  }, 60_000);

  afterAll(async () => {
    if (conf) {
      postfix('stop');
      await waitFor(() => postfix('status').status !== 0, 'postfix to stop', 10_000).catch(() => postfix('abort'));
    }
    await sink?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('one delivery names every envelope recipient; the Bcc recipient is recovered', async () => {
    const envelopeRcpts = ['bob@example.com', '"john doe"@example.com', 'hidden@example.net', 'Weird=x+y@Example.COM'];
    send(
      'alice@example.com',
      envelopeRcpts,
      [
        'From: Alice <alice@example.com>',
        'To: Bob <bob@example.com>',
        'Cc: "john doe"@example.com',
        'Bcc: Hidden <hidden@example.net>',
        'Subject: journal e2e',
        'Message-ID: <e2e-1@example.com>',
        '',
        'hello',
        '',
      ].join('\n'),
    );
    await waitFor(() => sink.txns.reduce((n, t) => n + t.rcpts.length, 0) >= 5, `journal delivery\n${maillog()}`);
    expect(sink.txns).toHaveLength(1);
    const txn = sink.txns[0]!;
    expect(txn.mailFrom).toBe('alice@example.com');

    // encodeJournalAddress() is exactly what Postfix puts on the wire, quoting included
    expect(txn.rcpts.map((r) => r.path).sort()).toEqual(
      [
        encodeJournalAddress('from', 'alice@example.com', ARCHIVE_DOMAIN),
        ...envelopeRcpts.map((r) => encodeJournalAddress('rcpt', r, ARCHIVE_DOMAIN)),
      ].sort(),
    );
    for (const r of txn.rcpts) {
      expect(r.params.NOTIFY).toBe('NEVER');
      // ORCPT is the journal address itself, xtext-encoded: it agrees with the decoded RCPT
      const orcpt = parseOrcpt(r.params.ORCPT!);
      expect(orcpt).not.toBeNull();
      expect(matcher.match(orcpt!)).toEqual(matcher.match(r.path));
    }
    // cleanup removed the Bcc: header from the copy Spindle gets
    expect(txn.data.toString('latin1')).not.toMatch(/^Bcc:/im);

    const r = await recover(txn);
    expect(r.mode).toBe('envelope');
    expect(r.envelopeSender).toBe('alice@example.com');
    const got = r.recipients.map((p) => `${p.kind} ${p.address} ${p.name}`.trim()).sort();
    expect(got).toEqual(
      [
        'to bob@example.com Bob',
        'cc "john doe"@example.com',
        'envelope bob@example.com Bob',
        'envelope "john doe"@example.com',
        'envelope hidden@example.net',
        'bcc hidden@example.net',
        'envelope Weird=x+y@example.com',
        'bcc Weird=x+y@example.com',
      ].sort(),
    );
  });

  it('a recipient limit splits the copy into byte-identical deliveries that merge back', async () => {
    sink.txns.length = 0;
    const set = spawnSync(POSTCONF, ['-c', conf, '-e', 'journal_destination_recipient_limit = 2'], { encoding: 'utf8' });
    expect(set.status).toBe(0);
    expect(postfix('reload').status).toBe(0);
    await new Promise((r) => setTimeout(r, 2500)); // let the new qmgr take over

    const rcpts = ['r1@example.com', 'r2@example.com', 'r3@example.com', 'r4@example.org', 'r5@example.org'];
    send(
      'carol@example.com',
      rcpts,
      [
        'From: Carol <carol@example.com>',
        'To: r1@example.com, r2@example.com',
        'Cc: r3@example.com',
        'Subject: split',
        'Message-ID: <e2e-2@example.com>',
        '',
        'body',
        '',
      ].join('\n'),
    );
    await waitFor(() => sink.txns.reduce((n, t) => n + t.rcpts.length, 0) >= 6, `split deliveries\n${maillog()}`);
    expect(sink.txns).toHaveLength(3);
    for (const t of sink.txns) {
      expect(t.rcpts.length).toBeLessThanOrEqual(2);
      expect(t.data.equals(sink.txns[0]!.data)).toBe(true);
    }

    const results = await Promise.all(sink.txns.map(recover));
    for (const r of results) {
      expect(r.mode).toBe('envelope');
      expect(r.envelopeSender).toBe('carol@example.com');
    }
    const merged = new Set(results.flatMap((r) => r.recipients.map((p) => `${p.kind} ${p.address}`)));
    expect([...merged].sort()).toEqual(
      [
        'to r1@example.com',
        'to r2@example.com',
        'cc r3@example.com',
        ...rcpts.map((a) => `envelope ${a}`),
        'bcc r4@example.org',
        'bcc r5@example.org',
      ].sort(),
    );
  });
});
