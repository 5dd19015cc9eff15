import pino, { type Logger } from 'pino';

export type { Logger };

/** Keys that must never reach a log line, wherever they appear. */
const REDACT = ['password', 'token', 'authorization', 'headers.authorization', 'req.headers.authorization', '*.password', '*.token'];

export function createLogger(opts: { level: string; format: string; destination?: pino.DestinationStream }): Logger {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base: pino.LoggerOptions = { level: opts.level, redact: { paths: REDACT, censor: '[redacted]' }, base: { app: 'spindle' } };
  if (opts.destination) return pino(base, opts.destination);
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' } } });
  }
  // Asynchronous writes: under load the lines of many SMTP sessions go out in a few write calls
  // instead of one blocking call each on the SMTP event loop. pino flushes what is buffered when
  // the process exits; a kill -9 can lose the last lines, never mail (the ledger is the record).
  return pino(base, pino.destination({ dest: 1, sync: false }));
}
