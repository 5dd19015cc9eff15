import type { Command } from 'commander';
import type { Config } from '../config/settings.js';
import { holdAdd, holdList, holdRelease, retentionAdd, retentionExplain, retentionList, retentionRemove, retentionRun } from './commands/retention.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];

/** `spindle retention …` and `spindle hold …` (docs/retention.md). */
export function addRetentionCommands(program: Command, config: () => Config): void {
  const retention = program.command('retention').description('retention rules, explain, and purges (docs/retention.md)');
  retention.command('list').description('the rules in force, the default first').option('--json', 'print JSON')
    .action((o: { json?: boolean }) => retentionList(config(), o));
  retention.command('add').description('add a rule, or set the default with --default (server stopped; else use the API)')
    .requiredOption('--period <period>', 'how long to keep: 90d, 18m, 7y or forever')
    .option('--participant <address|domain>', 'sender or recipient address or domain (repeatable; any participant matches)', collect)
    .option('--query <query>', 'and a search query (docs/search.md)')
    .option('--from <basis>', 'count from arrival (default) or from the message\'s Date header (date)')
    .option('--name <name>', 'a label')
    .option('--default', 'set the default that applies when no rule matches')
    .action((o: { period?: string; participant?: string[]; query?: string; from?: string; name?: string; default?: boolean }) => retentionAdd(config(), o));
  retention.command('remove').description('remove a rule; removing "default" makes the default keep-forever again').argument('<id>')
    .action((id: string) => retentionRemove(config(), id));
  retention.command('explain').description('which rules match a message, which one governs, when it expires, which holds keep it')
    .argument('<id>', 'message id').option('--as-of <date>', 'evaluate as of this date (YYYY-MM-DD, 00:00 UTC)').option('--json', 'print JSON')
    .action((id: string, o: { asOf?: string; json?: boolean }) => retentionExplain(config(), id, o));
  retention.command('run').description('purge expired mail not under a hold (server stopped; else POST /api/retention/run or SPINDLE_PURGE_TIME)')
    .option('--dry-run', 'only report, per rule, what would go and which held mail would otherwise go (runs beside a live server)')
    .option('--as-of <date>', 'evaluate as of this date (YYYY-MM-DD, 00:00 UTC); a real purge only up to today')
    .option('--json', 'print JSON')
    .action((o: { dryRun?: boolean; asOf?: string; json?: boolean }) => retentionRun(config(), o));

  const hold = program.command('hold').description('legal holds: held mail is never purged (docs/retention.md)');
  hold.command('list').description('active holds with how many messages each covers').option('--all', 'released holds too').option('--json', 'print JSON')
    .action((o: { all?: boolean; json?: boolean }) => holdList(config(), o));
  hold.command('add').description('place a hold (server stopped; else POST /api/holds)')
    .requiredOption('--case <name>', 'the case or matter')
    .requiredOption('--reason <text>', 'why')
    .option('--participant <address|domain>', 'sender or recipient address or domain (repeatable)', collect)
    .option('--query <query>', 'a search query (docs/search.md)')
    .option('--since <date>', 'messages dated on or after (YYYY-MM-DD)')
    .option('--until <date>', 'messages dated before (YYYY-MM-DD)')
    .action((o: { case?: string; reason?: string; participant?: string[]; query?: string; since?: string; until?: string }) => holdAdd(config(), o));
  hold.command('release').description('release a hold, saying why').argument('<id>').requiredOption('--reason <text>', 'why the hold ends')
    .action((id: string, o: { reason?: string }) => holdRelease(config(), id, o));
}
