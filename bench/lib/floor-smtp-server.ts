/**
 * The SMTP floor: smtp-server with Spindle's options and nothing behind it (each message is read
 * and dropped, then answered 250). Started by bench/floor.ts as a child process; prints its port.
 */
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({
  banner: 'floor',
  size: 50 * 1024 * 1024,
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  lenientAddressParsing: true,
  hideDSN: false,
  logger: false,
  onData(stream, _session, callback) {
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.on('end', () => callback(null, `dropped ${bytes} bytes`));
  },
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.server.address();
  process.stdout.write(`${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
