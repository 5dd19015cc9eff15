import { Command, CommanderError } from 'commander';
import { formatConfig } from '../config/load.js';
import { postfixConfig } from '../journal/postfix-config.js';
import { VERSION } from '../runtime/version.js';
import { rebuildCommand, tokenCreate, tokenList, tokenRevoke, verifyCommand } from './commands/admin.js';
import { userAdd, userAddresses, userDelete, userDisable, userList, userPasswd, userRoles, userTotp } from './commands/users.js';
import { searchCommand, showCommand, statsCommand } from './commands/archive.js';
import { auditCommand, type AuditCommandOptions } from './commands/audit.js';
import { exportCommand, type ExportCommandOptions } from './commands/export.js';
import { restoreCommand, type RestoreCommandOptions } from './commands/restore.js';
import { serveCommand } from './commands/serve.js';
import { loadCliConfig, type GlobalOptions } from './context.js';
import { addRetentionCommands } from './retention-commands.js';
import { CliError } from './errors.js';

export function buildProgram(): Command {
  const program = new Command('spindle')
    .description('Email archiver for Postfix: durable, deduplicated, searchable.')
    .version(VERSION)
    .option('-c, --config <file>', 'JSON config file (or SPINDLE_CONFIG)')
    .option('-d, --data-dir <dir>', 'archive data directory (or SPINDLE_DATA_DIR; default ./data)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const globals = () => program.opts<GlobalOptions>();
  const config = (flags = {}) => loadCliConfig(globals(), flags).config;

  program.command('serve')
    .description('run the SMTP journal listener, the indexer and the HTTP API')
    .option('--smtp-port <port>', 'SMTP port (0 picks one)')
    .option('--http-port <port>', 'HTTP port (0 picks one)')
    .action((o: { smtpPort?: string; httpPort?: string }) =>
      serveCommand(config({ ...(o.smtpPort ? { smtpPort: o.smtpPort } : {}), ...(o.httpPort ? { httpPort: o.httpPort } : {}) })));

  program.command('search')
    .description('search the archive (query language: docs/search.md), newest first')
    .argument('<query>', 'e.g. "from:alice@example.com has:attachment after:2024-01-01"')
    .option('--json', 'print the API JSON')
    .option('--limit <n>', 'results per page (1-500, default 20)')
    .option('--cursor <cursor>', 'next page, as printed by the previous page')
    .action((query: string, o: { json?: boolean; limit?: string; cursor?: string }) => searchCommand(config(), query, o));

  program.command('show')
    .description('show a message: metadata, recipients with kinds, deliveries; --raw prints the exact original bytes')
    .argument('<id>', 'message id from search')
    .option('--raw', 'write the original message bytes to stdout')
    .option('--json', 'print JSON')
    .action((id: string, o: { raw?: boolean; json?: boolean }) => showCommand(config(), id, o));

  const token = program.command('token').description('API bearer tokens');
  token.command('create')
    .description('create a token and print it once')
    .requiredOption('--role <role>', 'auditor (search and read all mail), admin (accounts, tokens, stats) or user (one account\'s mail)')
    .option('--name <name>', 'a label to recognise it by')
    .option('--user <account>', 'with --role user: the account whose mail the token may read')
    .action((o: { role?: string; name?: string; user?: string }) => tokenCreate(config(), o));
  token.command('list').description('list tokens (never their secrets)').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => tokenList(config(), o));
  token.command('revoke').description('revoke a token by id').argument('<id>')
    .action((id: string) => tokenRevoke(config(), id));

  const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];
  const user = program.command('user').description('accounts that sign in to the web UI and API (see docs/security.md)');
  user.command('add').description('create a local account; prints a random password once unless --password-stdin')
    .argument('<name>')
    .requiredOption('--role <role>', 'auditor, admin or user; repeat (or comma-separate) for several', collect)
    .option('--address <address>', 'with role user: an address whose mail the account reads; repeat for aliases', collect)
    .option('--password-stdin', 'read the password from the first line of standard input')
    .action((name: string, o: { role?: string[]; address?: string[]; passwordStdin?: boolean }) => userAdd(config(), name, o));
  user.command('list').description('accounts with roles, addresses and last sign-in').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => userList(config(), o));
  user.command('passwd').description('set a new password (random, printed once, unless --password-stdin); ends the account\'s sessions')
    .argument('<name>').option('--password-stdin', 'read the password from the first line of standard input')
    .action((name: string, o: { passwordStdin?: boolean }) => userPasswd(config(), name, o));
  user.command('disable').description('refuse sign-in and end the account\'s sessions').argument('<name>')
    .action((name: string) => userDisable(config(), name, true));
  user.command('enable').description('allow sign-in again').argument('<name>')
    .action((name: string) => userDisable(config(), name, false));
  user.command('delete').description('delete the account (its audit entries stay)').argument('<name>')
    .action((name: string) => userDelete(config(), name));
  user.command('roles').description('replace the account\'s roles').argument('<name>').argument('<roles...>', 'auditor, admin, user')
    .action((name: string, roles: string[]) => userRoles(config(), name, roles.flatMap((r) => r.split(','))));
  user.command('addresses').description('show, add or remove the addresses whose mail a user reads').argument('<name>')
    .option('--add <address>', 'add an address (repeatable)', collect)
    .option('--remove <address>', 'remove an address (repeatable)', collect)
    .action((name: string, o: { add?: string[]; remove?: string[] }) => userAddresses(config(), name, o));
  user.command('totp').description('turn on TOTP (prints the secret once) or off (--disable) for a local account').argument('<name>')
    .option('--disable', 'turn TOTP off')
    .action((name: string, o: { disable?: boolean }) => userTotp(config(), name, o));

  program.command('export')
    .description('export a search, mailboxes or a domain, byte for byte, as mbox, zip or a directory of .eml, with manifests and a sha256; audited')
    .option('--query <query>', 'every message this search finds (docs/search.md)')
    .option('--mailbox <address>', 'every message an address takes part in; repeat or comma-separate for several', collect)
    .option('--domain <domain>', 'every message an address at this domain takes part in')
    .option('--after <date>', 'dated on or after this day (YYYY-MM-DD, UTC)')
    .option('--before <date>', 'dated before this day (YYYY-MM-DD, UTC)')
    .requiredOption('--format <format>', 'mbox (mboxrd), zip (one .eml each) or dir (a directory of .eml)')
    .requiredOption('--out <path>', 'the file or directory to create')
    .option('--force', 'replace an existing --out')
    .action((o: ExportCommandOptions) => exportCommand(config(), o));

  program.command('stats').description('archive totals and index lag').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => statsCommand(config(), o));

  program.command('rebuild')
    .description('recreate the database from the ledger and the blobs (server must be stopped)')
    .action(() => rebuildCommand(config()));

  program.command('verify')
    .description('check the ledger and audit trail hash chains and re-hash blobs; exits 1 on any problem')
    .option('--sample <n>', 're-hash only n random blobs')
    .option('--all', 're-hash every blob (the default)')
    .option('--json', 'print the report as JSON')
    .action((o: { sample?: string; json?: boolean }) => verifyCommand(config(), o));

  program.command('audit')
    .description('show the audit trail (who searched, viewed or downloaded what), newest first')
    .option('--since <iso>', 'entries at or after this date or date-time (UTC unless a zone is given)')
    .option('--until <iso>', 'entries before this date or date-time (a date alone excludes that day)')
    .option('--actor <name>', 'token or account name')
    .option('--action <action>', 'e.g. search, message.view, message.raw, audit.read')
    .option('--target <target>', 'e.g. a message id')
    .option('--limit <n>', 'entries per page (1-500, default 50)')
    .option('--cursor <cursor>', 'next page, as printed by the previous page')
    .option('--json', 'print one JSON entry per line')
    .action((o: AuditCommandOptions) => auditCommand(config(), o));

  program.command('restore')
    .description('put messages back into a mailbox over IMAP (Dovecot master user, SPINDLE_RESTORE_IMAP_*), unread, with their original date; audited')
    .option('--ids <ids>', 'message ids, comma-separated')
    .option('--query <query>', 'every message this search finds (at most 1000)')
    .requiredOption('--mailbox <address>', 'the mailbox to restore into')
    .option('--folder <folder>', 'IMAP folder, created if missing (default Restored)')
    .option('--json', 'print the result as JSON')
    .action((o: RestoreCommandOptions) => restoreCommand(config(), o));

  addRetentionCommands(program, () => config());

  program.command('config')
    .description('print the effective configuration, with defaults and where each value came from')
    .action(() => {
      process.stdout.write(formatConfig(loadCliConfig(globals())));
    });

  program.command('postfix-config')
    .description('print the Postfix main.cf / master.cf / map lines that send journal copies here')
    .option('--mode <mode>', 'envelope (recommended), always_bcc, or both', 'both')
    .action((o: { mode: string }) => {
      if (!['envelope', 'always_bcc', 'both'].includes(o.mode)) throw new CliError('--mode must be envelope, always_bcc or both', 2);
      const c = config();
      const first = c.archiveAddresses[0]!;
      process.stdout.write(postfixConfig({
        archiveDomain: first.replace(/^.*@/, ''), smtpHost: c.smtpHost, smtpPort: c.smtpPort,
        mode: o.mode as 'envelope' | 'always_bcc' | 'both',
      }));
    });
  return program;
}

export async function run(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof CliError) {
      process.stderr.write(`spindle: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`spindle: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
