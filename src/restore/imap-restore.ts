import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { checkOptions, classifyImapError, DEFAULT_IMAP_TIMEOUT_MS, type ImapAuthenticatorOptions, type ImapLoginFailure } from '../auth/imap-login.js';

/**
 * Puts archived messages back into a mailbox with IMAP APPEND (imapflow): one connection, log in,
 * create the folder if it is missing, append each message, log out.
 *
 * Each message is appended byte for byte as archived, with its original date as the internal
 * date (so mail clients sort it where it belongs) and with no flags, so it shows as unread. The
 * mail server stores it directly; it never passes through Postfix, so the journal copy that
 * archives mail is not made and the restored copy is not archived again.
 *
 * The password is only handed to imapflow (whose logger is off); no result, error or detail
 * carries it.
 */

/** The same connection settings as IMAP sign-in (SPINDLE_IMAP_*). */
export type ImapConnection = Omit<ImapAuthenticatorOptions, 'allowedDomains'>;

export interface RestoreMessage {
  id: number;
  /** The exact archived bytes. */
  raw: Buffer;
  /** Becomes the message's IMAP internal date. */
  date: Date;
}

export interface RestoreProgress {
  done: number;
  appended: number;
  failed: number;
}

export interface RestoreOptions {
  connection: ImapConnection;
  auth: { user: string; pass: string };
  /** Created when missing. Default `Restored`. */
  folder?: string;
  messages: AsyncIterable<RestoreMessage>;
  onProgress?: (p: RestoreProgress) => void;
  /**
   * Runs once logged in and the folder exists, before the first APPEND: the audit entry goes
   * here, so nothing is restored off the record. A throw aborts the restore and is rethrown.
   */
  beforeAppend?: () => Promise<void>;
  /** The end user's address, sent as `x-originating-ip` (see docs/imap-login.md on Dovecot's auth penalty). */
  clientIp?: string;
  /** Budget for one APPEND (and the socket's idle limit). Default 120 s. */
  appendTimeoutMs?: number;
}

export interface RestoreResult {
  appended: number;
  failed: Array<{ id: number; error: string }>;
  /** Why the restore stopped before the end of `messages` (the connection was lost), or null. */
  stopped: string | null;
  /** The folder did not exist and was created. */
  folderCreated: boolean;
}

export type RestoreFailure = Exclude<ImapLoginFailure, 'domain_not_allowed'> | 'folder_refused';

/** Nothing was appended: the login or the folder was refused, or the server could not be reached. */
export class RestoreConnectError extends Error {
  constructor(readonly reason: RestoreFailure, readonly detail: string) {
    super(`${reason}: ${detail}`);
  }
}

export const DEFAULT_RESTORE_FOLDER = 'Restored';
export const DEFAULT_APPEND_TIMEOUT_MS = 120_000;
const MAX_FOLDER_LENGTH = 200;
const MAX_DETAIL_LENGTH = 300;

/**
 * Folder names are user input sent to the mail server: no control characters (they would end the
 * command line), no IMAP wildcards, no empty hierarchy levels.
 */
export function folderProblem(folder: string): string | null {
  if (folder.trim() === '' || folder !== folder.trim()) return 'folder name is empty or has leading/trailing spaces';
  if (folder.length > MAX_FOLDER_LENGTH) return `folder name is longer than ${MAX_FOLDER_LENGTH} characters`;
  if (/[\x00-\x1f\x7f*%]/.test(folder)) return 'folder name contains control characters, * or %';
  if (/^[/.]|[/.]$|\/\/|\.\./.test(folder)) return 'folder name has an empty hierarchy level';
  return null;
}

class DeadlineError extends Error {
  readonly code = 'ETIMEOUT';
}

/** What a failed command said: the server's response text and code, or the socket error. */
function commandError(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { response?: unknown; message?: unknown; code?: unknown; serverResponseCode?: unknown };
  const text = (typeof e.response === 'string' && e.response) || (typeof e.message === 'string' && e.message) || 'unknown error';
  const code = (typeof e.serverResponseCode === 'string' && e.serverResponseCode) || (typeof e.code === 'string' && e.code) || '';
  return code ? `${text} (${code})` : text;
}

function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export async function restoreMessages(opts: RestoreOptions): Promise<RestoreResult> {
  checkOptions(opts.connection);
  const folder = opts.folder ?? DEFAULT_RESTORE_FOLDER;
  const problem = folderProblem(folder);
  if (problem) throw new RestoreConnectError('folder_refused', problem);
  const { pass } = opts.auth;
  // Whatever a server echoes back, the password must not travel on in a result.
  const scrub = (s: string): string => {
    const clean = pass ? s.split(pass).join('[redacted]') : s;
    return clean.length > MAX_DETAIL_LENGTH ? `${clean.slice(0, MAX_DETAIL_LENGTH)}…` : clean;
  };
  const timeoutMs = opts.connection.timeoutMs ?? DEFAULT_IMAP_TIMEOUT_MS;
  const appendTimeoutMs = opts.appendTimeoutMs ?? DEFAULT_APPEND_TIMEOUT_MS;
  const c = opts.connection;
  const clientOptions: ImapFlowOptions = {
    host: c.host,
    port: c.port,
    secure: c.security === 'tls',
    // Required, not opportunistic, as for sign-in: a stripped STARTTLS must fail, not send the password in clear.
    doSTARTTLS: c.security === 'starttls' ? true : c.security === 'none' ? false : undefined,
    servername: c.servername,
    tls: { rejectUnauthorized: c.rejectUnauthorized ?? true, ...(c.ca !== undefined ? { ca: c.ca } : {}) },
    auth: { user: opts.auth.user, pass },
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: appendTimeoutMs,
    clientInfo: {
      name: 'spindle', version: false, vendor: false, 'support-url': false,
      ...(opts.clientIp ? { 'x-originating-ip': opts.clientIp } : {}),
    },
  };
  const client = new ImapFlow(clientOptions);
  // A late socket error after a command settled would otherwise be an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    try {
      await withDeadline(client.connect(), timeoutMs, 'login');
    } catch (err) {
      const { reason, detail } = classifyImapError(err);
      throw new RestoreConnectError(reason, scrub(detail));
    }
    // A PREAUTH greeting never looked at the credentials (see auth/imap-login.ts).
    if (typeof client.greeting !== 'string') throw new RestoreConnectError('unavailable', 'server greeted with PREAUTH: the credentials were never checked');

    let folderCreated: boolean;
    try {
      folderCreated = (await withDeadline(client.mailboxCreate(folder), timeoutMs, 'CREATE')).created;
    } catch (err) {
      throw new RestoreConnectError('folder_refused', scrub(`could not create folder ${JSON.stringify(folder)}: ${commandError(err)}`));
    }
    await opts.beforeAppend?.();

    let appended = 0;
    const failed: RestoreResult['failed'] = [];
    let stopped: string | null = null;
    let done = 0;
    for await (const m of opts.messages) {
      try {
        // No flags: the copy shows as unread. The date keeps it in its place in the mailbox.
        const r = await withDeadline(client.append(folder, m.raw, [], m.date), appendTimeoutMs, 'APPEND');
        if (!r) throw new Error('the IMAP connection is no longer usable');
        appended++;
      } catch (err) {
        const detail = scrub(commandError(err));
        failed.push({ id: m.id, error: detail });
        // A refused message (too large, say) is that message's problem; a lost connection ends the run.
        if (err instanceof DeadlineError || !client.usable) stopped = detail;
      }
      done++;
      opts.onProgress?.({ done, appended, failed: failed.length });
      if (stopped) break;
    }
    if (!stopped) await withDeadline(client.logout(), timeoutMs, 'LOGOUT').catch(() => undefined);
    return { appended, failed, stopped, folderCreated };
  } finally {
    client.close(); // idempotent; after a timeout this is what drops the socket
  }
}
