import path from 'node:path';
import type { Config } from '../../config/settings.js';
import { openDatabase } from '../../db/database.js';
import { createLogger } from '../../log/logger.js';
import { startArchiver, type RunningArchiver } from '../../runtime/archiver.js';
import { LockedError } from '../../runtime/lock.js';
import { dataPaths } from '../../runtime/paths.js';
import { CliError } from '../errors.js';

function banner(config: Config, smtp: { host: string; port: number }, http: { host: string; port: number }, hasTokens: boolean, firstAdmin: RunningArchiver['firstAdmin']): string {
  const domain = config.archiveAddresses[0]!.replace(/^.*@/, '');
  const rel = path.relative(process.cwd(), config.dataDir) || '.';
  const archiveRcpt = config.archiveAddresses[0]!.startsWith('@') ? `archive${config.archiveAddresses[0]}` : config.archiveAddresses[0]!;
  const steps = [
    `Point Postfix at it:    npx spindle postfix-config      (main.cf / master.cf lines for ${domain})`,
    `Check with a test mail: swaks --server ${smtp.host}:${smtp.port} --to ${archiveRcpt}`,
    'Add a compliance officer: npx spindle user add NAME --role auditor',
    ...(hasTokens ? [] : ['Or an API token:        npx spindle token create --role auditor --name me']),
    'Search:                 npx spindle search "subject:invoice after:2024-01-01"',
  ];
  const admin = firstAdmin
    ? ['', firstAdmin.password
      ? `First start: created account "${firstAdmin.name}" (role admin). Its password, shown only this once:\n\n    ${firstAdmin.password}\n\n  Change it with: npx spindle user passwd ${firstAdmin.name}`
      : `First start: created account "${firstAdmin.name}" (role admin) with the password from SPINDLE_ADMIN_PASSWORD.`]
    : [];
  const lines = [
    '',
    'Spindle is archiving.',
    `  SMTP journal listener  smtp://${smtp.host}:${smtp.port}   (accepts: ${config.archiveAddresses.join(', ')})`,
    `  HTTP API               http://${http.host}:${http.port}/api/health`,
    `  Data                   ${config.dataDir}${rel.startsWith('..') ? '' : `  (./${rel.replace(/^\.\/?/, '')})`}`,
    ...admin,
    '',
    'Next steps:',
    ...steps.map((step, i) => `  ${i + 1}. ${step}`),
    '',
  ];
  return lines.join('\n');
}

export async function serveCommand(config: Config): Promise<void> {
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  let archiver;
  try {
    archiver = await startArchiver(config, log);
  } catch (err) {
    if (err instanceof LockedError) throw new CliError(err.message);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new CliError(`cannot listen: ${e.message} (choose another port with SPINDLE_SMTP_PORT / SPINDLE_HTTP_PORT)`);
    if (e.code === 'EACCES' || e.code === 'EROFS') throw new CliError(`cannot use ${config.dataDir}: ${e.message}`);
    throw err;
  }
  const db = openDatabase({ file: dataPaths(config.dataDir).db });
  const hasTokens = (db.prepare('SELECT count(*) FROM tokens WHERE revoked_at IS NULL').pluck().get() as number) > 0;
  db.close();
  process.stdout.write(banner(config, archiver.smtp, archiver.http, hasTokens, archiver.firstAdmin) + '\n');

  let stoppingSince = 0;
  const stop = (signal: string) => {
    if (stoppingSince) {
      // npm and the terminal both deliver Ctrl-C: only a second press, a moment later, forces it.
      if (Date.now() - stoppingSince < 1000) return;
      log.warn({ event: 'shutdown.forced', signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stoppingSince = Date.now();
    log.info({ event: 'shutdown', signal }, 'stopping: finishing SMTP sessions, flushing the ledger');
    archiver.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ event: 'shutdown.error', err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
