import fs from 'node:fs';
import { BlockList, isIPv4, isIPv6, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { ArchiveAddressMatcher } from '../journal/archive-address.js';
import type { Ledger } from '../ledger/ledger.js';
import type { DeliveryBody } from '../ledger/records.js';
import type { Metrics } from '../metrics/metrics.js';
import type { BlobStore } from '../store/blob-store.js';
import { REPLIES, replyForError } from './replies.js';

export interface SmtpReceiverOptions {
  host: string;
  port: number;
  hostname: string;
  allow: string[];
  maxMessageBytes: number;
  maxClients: number;
  tls?: { cert: string; key: string } | null;
  matcher: ArchiveAddressMatcher;
  store: BlobStore;
  ledger: Ledger;
  log: Logger;
  metrics: Metrics;
}

export interface SmtpReceiver {
  listen(): Promise<{ host: string; port: number }>;
  /** Stops accepting, lets sessions in DATA finish (up to the timeout), then closes. */
  close(timeoutMs?: number): Promise<void>;
}

export function buildAllowList(entries: string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [net, bits] = entry.split('/');
    const type = net && isIPv4(net) ? 'ipv4' : net && isIPv6(net) ? 'ipv6' : null;
    if (!type) throw new Error(`SPINDLE_SMTP_ALLOW: ${JSON.stringify(entry)} is not an address or CIDR network`);
    if (bits === undefined) list.addAddress(net!, type);
    else {
      const prefix = Number(bits);
      if (!/^\d+$/.test(bits) || prefix > (type === 'ipv4' ? 32 : 128)) throw new Error(`SPINDLE_SMTP_ALLOW: bad prefix length in ${JSON.stringify(entry)}`);
      list.addSubnet(net!, prefix, type);
    }
  }
  return (address) => {
    const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    if (isIPv4(plain)) return list.check(plain, 'ipv4');
    if (isIPv6(plain)) return list.check(plain, 'ipv6');
    return false;
  };
}

/**
 * The journal listener. A message is answered 250 only after its blob and its ledger record are
 * fsynced; every fault before that is a 4xx so that Postfix keeps the message and retries.
 */
export function createSmtpReceiver(opts: SmtpReceiverOptions): SmtpReceiver {
  const allowed = buildAllowList(opts.allow);
  const { log, metrics } = opts;
  let closing = false;
  const sessionLog = (session: SMTPServerSession): Logger => log.child({ session: session.id, tx: session.transaction });

  const server = new SMTPServer({
    name: opts.hostname,
    banner: 'Spindle archive journal receiver',
    size: opts.maxMessageBytes,
    maxClients: opts.maxClients,
    authOptional: true,
    disabledCommands: opts.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(opts.tls ? { key: fs.readFileSync(opts.tls.key), cert: fs.readFileSync(opts.tls.cert) } : {}),
    disableReverseLookup: true,
    // Encoded journal addresses can exceed RFC 5321's 253-octet path and carry local parts such as
    // "a..b" that strict parsing answers 501; with NOTIFY=NEVER Postfix would drop them silently.
    // The archive-address matcher does the validation that matters.
    lenientAddressParsing: true,
    // Advertise DSN so Postfix passes NOTIFY=NEVER for journal copies (a failed copy must never
    // bounce to the original sender) and ORCPT, which the ledger keeps as part of the envelope.
    hideDSN: false,
    logger: false,
    socketTimeout: 5 * 60 * 1000,

    onConnect(session, callback) {
      if (closing) return callback(REPLIES.shuttingDown());
      if (!allowed(session.remoteAddress)) {
        metrics.smtpConnections.inc({ outcome: 'refused' });
        log.warn({ event: 'smtp.client_refused', session: session.id, client: session.remoteAddress }, 'client not in SPINDLE_SMTP_ALLOW');
        return callback(REPLIES.clientNotAllowed());
      }
      metrics.smtpConnections.inc({ outcome: 'accepted' });
      log.debug({ event: 'smtp.connect', session: session.id, client: session.remoteAddress }, 'connection');
      callback();
    },

    onRcptTo(address, session, callback) {
      if (!opts.matcher.match(address.address)) {
        sessionLog(session).warn({ event: 'smtp.rcpt_refused', rcpt: address.address }, 'not an archive address');
        return callback(REPLIES.notArchiveAddress(address.address));
      }
      callback();
    },

    onData(stream, session, callback) {
      void receive(stream, session).then(
        (text) => callback(null, text),
        (err: unknown) => callback(err as Error),
      );
    },
  });

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const slog = sessionLog(session);
    const started = performance.now();
    try {
      // destroyOnReturn: false — on a fault smtp-server must still read the rest of DATA.
      const put = await opts.store.put(stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>, { maxBytes: opts.maxMessageBytes });
      metrics.receivedBytes.inc(put.size);
      const mailFrom = session.envelope.mailFrom;
      const body: DeliveryBody = {
        type: 'delivery',
        blob: put.sha256,
        size: put.size,
        stored: put.storedSize,
        env: {
          mailFrom: mailFrom ? mailFrom.address : '',
          rcpts: session.envelope.rcptTo.map((r) => {
            const orcpt = (r.args as Record<string, unknown> | false | undefined) ? (r.args as Record<string, string>).ORCPT : undefined;
            return orcpt ? { address: r.address, orcpt } : { address: r.address };
          }),
          client: session.remoteAddress,
          helo: session.hostNameAppearsAs || '',
          session: session.id,
          tls: session.secure,
        },
      };
      const record = await opts.ledger.append(body);
      const seconds = (performance.now() - started) / 1000;
      metrics.ingestSeconds.observe(seconds);
      metrics.smtpReplies.inc({ code: '250' });
      slog.info({ event: 'smtp.archived', seq: record.seq, sha256: put.sha256, size: put.size, rcpts: body.env.rcpts.length, duplicate: put.existed, ms: Math.round(seconds * 1000) }, 'archived');
      return `2.0.0 Archived as seq ${record.seq}`;
    } catch (err) {
      const reply = replyForError(err);
      metrics.smtpReplies.inc({ code: String(reply.responseCode) });
      slog.error({ event: 'smtp.refused', code: reply.responseCode, err }, 'message not archived; client told to retry or give up');
      throw reply;
    }
  }

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          server.on('error', (err) => log.error({ event: 'smtp.error', err }, 'SMTP server error'));
          const addr = server.server.address() as AddressInfo;
          resolve({ host: addr.address, port: addr.port });
        });
      });
    },
    close(timeoutMs = 10_000) {
      closing = true;
      return new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
