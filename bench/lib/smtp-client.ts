import net from 'node:net';

/**
 * A deliberately small SMTP client for load generation: one persistent session, no pipelining,
 * no TLS, no AUTH. It spends as little CPU as possible on the benchmark side (the server shares the
 * machine), and it measures what Postfix would see: the time from sending DATA to the final reply.
 */
export interface SmtpReply {
  code: number;
  text: string;
}

export interface SendResult extends SmtpReply {
  /** Milliseconds from writing "DATA" to reading the reply after the final dot. */
  dataMs: number;
}

/** The message as it goes over the wire after DATA: CRLF lines, dot-stuffed, ending in CRLF.CRLF. */
export function toWire(raw: Buffer): Buffer {
  let text = raw.toString('latin1');
  text = text.replace(/\r?\n/g, '\r\n');
  if (text.startsWith('.')) text = '.' + text;
  text = text.replace(/\r\n\./g, '\r\n..');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text + '.\r\n', 'latin1');
}

export class SmtpClient {
  private buf = '';
  private lines: string[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private ready: SmtpReply[] = [];
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket, private readonly timeoutMs: number) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by server')));
  }

  static async connect(port: number, host = '127.0.0.1', opts: { helo?: string; timeoutMs?: number } = {}): Promise<SmtpClient> {
    if (!isLoopback(host)) throw new Error(`refusing to connect to ${host}: the benchmark only targets loopback`);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    const client = new SmtpClient(socket, opts.timeoutMs ?? 60_000);
    const greeting = await client.reply();
    if (greeting.code !== 220) throw new Error(`greeting: ${greeting.code} ${greeting.text}`);
    const ehlo = await client.command(`EHLO ${opts.helo ?? 'bench.localhost'}`);
    if (ehlo.code !== 250) throw new Error(`EHLO: ${ehlo.code} ${ehlo.text}`);
    return client;
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.lines.push(line);
      // "250-..." continues a multi-line reply; "250 ..." (or a bare code) ends it.
      if (line.length < 4 || line[3] !== '-') {
        const reply: SmtpReply = { code: Number(line.slice(0, 3)) || 0, text: this.lines.join('\n') };
        this.lines = [];
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          clearTimeout(w.timer);
          w.resolve(reply);
        } else this.ready.push(reply);
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private reply(): Promise<SmtpReply> {
    const queued = this.ready.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no reply within ${this.timeoutMs} ms`));
        this.socket.destroy();
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  private command(line: string): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  /**
   * One transaction. `wire` must come from toWire(). A refusal at MAIL, RCPT or DATA is returned
   * (code and text), the session is reset with RSET and stays usable.
   */
  async send(mailFrom: string, rcpts: string[], wire: Buffer): Promise<SendResult> {
    const mail = await this.command(`MAIL FROM:<${mailFrom}>`);
    if (mail.code !== 250) return this.refused(mail);
    let accepted = 0;
    let lastRefusal: SmtpReply | null = null;
    for (const r of rcpts) {
      const rc = await this.command(`RCPT TO:<${r}>`);
      if (rc.code === 250 || rc.code === 251) accepted++;
      else lastRefusal = rc;
    }
    if (accepted === 0) return this.refused(lastRefusal ?? { code: 0, text: 'no recipient' });
    const started = performance.now();
    const data = await this.command('DATA');
    if (data.code !== 354) return this.refused(data, performance.now() - started);
    this.socket.write(wire);
    const final = await this.reply();
    return { ...final, dataMs: performance.now() - started };
  }

  private async refused(r: SmtpReply, dataMs = 0): Promise<SendResult> {
    await this.command('RSET').catch(() => undefined);
    return { ...r, dataMs };
  }

  async quit(): Promise<void> {
    try {
      if (!this.failure) await Promise.race([this.command('QUIT'), new Promise((r) => setTimeout(r, 1000))]);
    } catch {
      /* closing anyway */
    }
    this.socket.destroy();
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]';
}
