import { randomBytes } from 'node:crypto';
import type { AuditDetails, AuditOutcome } from '../audit/entries.js';
import type { BlobStore } from '../store/blob-store.js';
import { RestoreConnectError, restoreMessages, type ImapConnection, type RestoreProgress, type RestoreResult } from './imap-restore.js';
import { readMessages, type RestoreSelection, type Selection } from './select.js';

/**
 * One restore as the API and the CLI run it: the selected messages into one mailbox, with its
 * audit entries. Who may restore what is decided by the caller; this puts it on record:
 *   - `start` (outcome ok) once logged in, before the first APPEND: if it cannot be written,
 *     nothing is appended;
 *   - `done` with the counts when it ended, outcome `denied` if the request named someone else's
 *     messages, `failed` if anything was not restored, else `ok`;
 *   - `refused` instead of both when the mail server refused the login or the folder, or could
 *     not be reached (`denied` for a user's wrong password, `failed` otherwise).
 * All entries of one restore share a `restore_id`.
 */

/** Settings for restores; `imap` null: SPINDLE_IMAP_HOST is not set; `master` null: no master user configured. */
export interface RestoreSetup {
  imap: ImapConnection | null;
  master: { user: string; password: string; separator: string } | null;
}

/** Dovecot master-user login: `mailbox*master` with the master's password opens that mailbox. */
export function masterLogin(master: NonNullable<RestoreSetup['master']>, mailbox: string): { user: string; pass: string } {
  return { user: `${mailbox}${master.separator}${master.user}`, pass: master.password };
}

export type RestoreMethod = 'own' | 'master';

export interface RestoreAuditEntry {
  target: string;
  outcome: AuditOutcome;
  details: AuditDetails;
}

/** The request part of every entry: enough to tell what was asked for, never credentials. */
export function requestDetails(restoreId: string, method: RestoreMethod, folder: string, request: RestoreSelection): AuditDetails {
  const what: AuditDetails = 'ids' in request
    ? { ids: request.ids.join(','), ids_count: request.ids.length } // the trail clips a long list; the count stays exact
    : { query: request.query };
  return { restore_id: restoreId, method, folder, ...what };
}

export const newRestoreId = (): string => randomBytes(6).toString('hex');

export interface RunRestoreOptions {
  store: BlobStore;
  connection: ImapConnection;
  auth: { user: string; pass: string };
  mailbox: string;
  folder: string;
  method: RestoreMethod;
  request: RestoreSelection;
  selection: Selection;
  restoreId: string;
  /** Writes one audit entry durably; a throw before the first APPEND aborts the restore. */
  record: (entry: RestoreAuditEntry) => Promise<void>;
  clientIp?: string;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreReport {
  restore_id: string;
  mailbox: string;
  folder: string;
  /** Messages selected for restoring (after leaving out what could not or may not be restored). */
  selected: number;
  appended: number;
  failed: Array<{ id: number; error: string }>;
  not_found: number[];
  not_participant: number[];
  /** Why the run ended early (connection lost), or null. */
  stopped: string | null;
  outcome: AuditOutcome;
}

/** Runs the restore and writes its entries; rethrows RestoreConnectError after recording it. */
export async function runRestore(opts: RunRestoreOptions): Promise<RestoreReport> {
  const { selection } = opts;
  const base = requestDetails(opts.restoreId, opts.method, opts.folder, opts.request);
  const counts = {
    selected: selection.messages.length, not_found: selection.notFound.length, not_participant: selection.notParticipant.length,
  };
  const unreadable: RestoreResult['failed'] = [];
  let result: RestoreResult = { appended: 0, failed: [], stopped: null, folderCreated: false };
  // Nothing to put back: no connection, no empty folder made.
  if (selection.messages.length > 0) {
    try {
      result = await restoreMessages({
        connection: opts.connection, auth: opts.auth, folder: opts.folder,
        messages: readMessages(opts.store, selection.messages, (id, error) => unreadable.push({ id, error })),
        beforeAppend: () => opts.record({ target: opts.mailbox, outcome: 'ok', details: { ...base, stage: 'start', ...counts } }),
        ...(opts.clientIp ? { clientIp: opts.clientIp } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
    } catch (err) {
      if (err instanceof RestoreConnectError) {
        await opts.record({
          // A user's wrong password is a refusal; a refused master login is a setup or mailbox problem.
          target: opts.mailbox, outcome: err.reason === 'bad_credentials' && opts.method === 'own' ? 'denied' : 'failed',
          details: { ...base, stage: 'refused', ...counts, error: err.reason },
        });
      }
      throw err;
    }
  }
  const failed = [...unreadable, ...result.failed].sort((a, b) => a.id - b.id);
  const outcome: AuditOutcome = selection.notParticipant.length > 0 ? 'denied'
    : failed.length > 0 || selection.notFound.length > 0 || result.stopped !== null ? 'failed' : 'ok';
  await opts.record({
    target: opts.mailbox, outcome,
    details: {
      ...base, stage: 'done', ...counts, appended: result.appended, failed: failed.length,
      ...(result.stopped ? { stopped: result.stopped } : {}),
    },
  });
  return {
    restore_id: opts.restoreId, mailbox: opts.mailbox, folder: opts.folder, selected: selection.messages.length,
    appended: result.appended, failed, not_found: selection.notFound, not_participant: selection.notParticipant,
    stopped: result.stopped, outcome,
  };
}
