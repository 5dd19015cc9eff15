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
  return pino(base);
}
