import type { AuditOutcome } from '../../audit/entries.js';
import type { Config } from '../../config/settings.js';
import { createArchiveReader } from '../../db/archive-reader.js';
import { normalizeAddress, UserError } from '../../db/users.js';
import { DEFAULT_RESTORE_FOLDER, folderProblem, RestoreConnectError } from '../../restore/imap-restore.js';
import { masterLogin, newRestoreId, requestDetails, runRestore, type RestoreAuditEntry } from '../../restore/restore-job.js';
import { MAX_RESTORE_MESSAGES, selectMessages, TooManyMessagesError, type RestoreSelection } from '../../restore/select.js';
import { dataPaths } from '../../runtime/paths.js';
import { restoreSetupFromConfig } from '../../runtime/restore.js';
import { QueryError } from '../../search/query.js';
import { createSearcher } from '../../search/search.js';
import { createFsBlobStore } from '../../store/fs-store.js';
import { recordCliAudit } from '../cli-audit.js';
import { openArchiveDb } from '../context.js';
import { CliError } from '../errors.js';
import { createProgress } from '../progress.js';

export interface RestoreCommandOptions {
  ids?: string;
  query?: string;
  mailbox?: string;
  folder?: string;
  json?: boolean;
}

function parseRequest(o: RestoreCommandOptions): RestoreSelection {
  if ((o.ids === undefined) === (o.query === undefined)) throw new CliError('give either --ids or --query', 2);
  if (o.query !== undefined) return { query: o.query };
  const ids = (o.ids ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((s) => !/^\d{1,16}$/.test(s));
  if (ids.length === 0 || bad !== undefined) throw new CliError(`--ids expects message ids separated by commas${bad ? `, got ${JSON.stringify(bad)}` : ''}`, 2);
  if (ids.length > MAX_RESTORE_MESSAGES) throw new CliError(`--ids: at most ${MAX_RESTORE_MESSAGES} messages at a time`, 2);
  return { ids: ids.map(Number) };
}

/**
 * `spindle restore`: puts messages back into a mailbox with the configured Dovecot master user,
 * as the API does for auditors, with the same audit entries (actor `cli:<OS user>`). It only
 * reads the archive, so it runs beside a live server.
 */
export async function restoreCommand(config: Config, o: RestoreCommandOptions): Promise<void> {
  const request = parseRequest(o);
  let mailbox: string;
  try {
    mailbox = normalizeAddress(o.mailbox ?? '');
  } catch (err) {
    if (err instanceof UserError) throw new CliError(`--mailbox: ${err.message}`, 2);
    throw err;
  }
  const folder = o.folder ?? DEFAULT_RESTORE_FOLDER;
  const problem = folderProblem(folder);
  if (problem) throw new CliError(`--folder: ${problem}`, 2);

  const restoreId = newRestoreId();
  const record = (e: RestoreAuditEntry) => recordCliAudit(config, { action: 'restore', target: e.target, outcome: e.outcome, details: e.details });
  const refuse = async (message: string, outcome: AuditOutcome, code: string, exitCode = 1): Promise<never> => {
    await record({ target: mailbox, outcome, details: { ...requestDetails(restoreId, 'master', folder, request), stage: 'refused', error: code } });
    throw new CliError(message, exitCode);
  };
  const setup = restoreSetupFromConfig(config);
  if (!setup.imap) return refuse('restoring needs the mail server: set SPINDLE_IMAP_HOST (docs/restore.md)', 'failed', 'restore_not_configured');
  if (!setup.master) {
    return refuse('restoring needs a Dovecot master user: set SPINDLE_RESTORE_IMAP_USER and SPINDLE_RESTORE_IMAP_PASSWORD (docs/restore.md)', 'failed', 'restore_not_configured');
  }

  const db = openArchiveDb(config);
  try {
    let selection;
    try {
      selection = selectMessages({ reader: createArchiveReader(db), searcher: createSearcher(db) }, request, null);
    } catch (err) {
      if (err instanceof QueryError) return await refuse(`bad query: ${err.message}`, 'failed', 'bad_query', 2);
      if (err instanceof TooManyMessagesError) return await refuse(err.message, 'failed', 'too_many', 2);
      throw err;
    }
    const store = createFsBlobStore({ dir: dataPaths(config.dataDir).blobs, recentCacheBytes: 0, readOnly: true });
    const progress = createProgress(`Restoring into ${mailbox}/${folder}`, selection.messages.length);
    let doneRecordError: unknown = null;
    let report;
    try {
      report = await runRestore({
        store, connection: setup.imap, auth: masterLogin(setup.master, mailbox), mailbox, folder, method: 'master',
        request, selection, restoreId,
        // Once messages are in the mailbox, report what happened first, then the audit failure.
        record: (e) => (e.details.stage === 'done' ? record(e).catch((err: unknown) => void (doneRecordError = err)) : record(e)),
        onProgress: (p) => progress.update(p.done, p.failed ? `${p.failed} failed` : ''),
      });
    } catch (err) {
      if (!(err instanceof RestoreConnectError)) throw err;
      const why = err.reason === 'bad_credentials'
        ? `the mail server refused the master-user login into ${mailbox} (does the mailbox exist? are SPINDLE_RESTORE_IMAP_* right?)`
        : err.reason === 'folder_refused' ? err.detail : `the mail server could not be reached (${err.reason}): ${err.detail}`;
      throw new CliError(`restore failed, nothing was restored: ${why}`);
    } finally {
      progress.stop();
    }

    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const lines = [`Restored ${report.appended} of ${report.selected} message(s) into ${mailbox}, folder ${folder} (restore ${report.restore_id}).`];
      if (report.not_found.length) lines.push(`No such message: ${report.not_found.join(', ')}`);
      for (const f of report.failed) lines.push(`Failed ${f.id}: ${f.error}`);
      if (report.stopped) lines.push(`Stopped early: ${report.stopped}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    if (doneRecordError) throw new CliError(`the restore ran, but its final audit entry could not be written: ${(doneRecordError as Error).message}`);
    if (report.outcome !== 'ok') process.exitCode = 1;
  } finally {
    db.close();
  }
}
