import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

export interface SendResult {
  code: number;
  response: string;
}

export interface Envelope {
  from: string;
  to: string[];
  /** Per-recipient DSN ORCPT values, sent as ORCPT=rfc822;<xtext>. */
  dsn?: { orcpt?: string };
}

/** A persistent SMTP client session, like Postfix's reuse of connections to a busy destination. */
export interface SmtpSession {
  send(envelope: Envelope, raw: Buffer | string): Promise<SendResult>;
  close(): Promise<void>;
}

function replyOf(err: unknown): SendResult {
  const e = err as { responseCode?: number; response?: string; message?: string };
  return { code: e.responseCode ?? 0, response: e.response ?? e.message ?? String(err) };
}

export async function openSmtp(port: number, host = '127.0.0.1'): Promise<SmtpSession> {
  const conn = new SMTPConnection({ host, port, secure: false, ignoreTLS: true, name: 'client.test', connectionTimeout: 10_000, socketTimeout: 60_000 });
  await new Promise<void>((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => {
      conn.off('error', reject);
      resolve();
    });
  });
  // A connection that dies mid-transaction (server killed) must still settle the pending send.
  let pending: ((r: SendResult) => void) | null = null;
  let dead: SendResult | null = null;
  const die = (why: string) => {
    dead ??= { code: 0, response: why };
    pending?.(dead);
    pending = null;
  };
  conn.on('error', (err: Error) => die(err.message));
  conn.on('end', () => die('connection closed'));
  return {
    send(envelope, raw) {
      if (dead) return Promise.resolve(dead);
      return new Promise((settle) => {
        const resolve = (r: SendResult) => {
          pending = null;
          settle(r);
        };
        pending = resolve;
        conn.send(
          { from: envelope.from, to: envelope.to, ...(envelope.dsn ? { dsn: envelope.dsn } : {}) } as SMTPConnection.Envelope,
          typeof raw === 'string' ? Buffer.from(raw) : raw,
          (err, info) => {
            if (err) return resolve(replyOf(err));
            const response = String(info.response ?? '');
            resolve({ code: Number(response.slice(0, 3)), response });
          },
        );
      });
    },
    close() {
      return new Promise((resolve) => {
        conn.once('end', () => resolve());
        conn.quit();
        setTimeout(resolve, 2000).unref();
      });
    },
  };
}

/** Sends one message on a fresh connection. */
export async function sendMail(port: number, envelope: Envelope, raw: Buffer | string): Promise<SendResult> {
  let session: SmtpSession;
  try {
    session = await openSmtp(port);
  } catch (err) {
    return replyOf(err);
  }
  try {
    return await session.send(envelope, raw);
  } finally {
    await session.close();
  }
}
