import { MessageTooLargeError } from '../store/blob-store.js';

/** An SMTP reply smtp-server understands: an Error with responseCode. */
export type SmtpReplyError = Error & { responseCode: number };

export function smtpError(code: number, text: string): SmtpReplyError {
  return Object.assign(new Error(text), { responseCode: code });
}

/**
 * The one place that decides how a fault is answered. Only a message over the size limit is
 * refused for good (552); any other fault is temporary (451), so Postfix keeps the message
 * queued and retries. A 250 is never sent for a message that is not durable.
 */
export function replyForError(err: unknown): SmtpReplyError {
  if (err instanceof MessageTooLargeError) return smtpError(552, `5.3.4 Message too big for this archive (limit ${err.limit} bytes)`);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return smtpError(452, '4.3.1 Archive storage is full, try again later');
  return smtpError(451, '4.3.0 Archive could not store the message, try again later');
}

export const REPLIES = {
  clientNotAllowed: () => smtpError(554, '5.7.1 This client may not deliver to the archive'),
  notArchiveAddress: (a: string) => smtpError(550, `5.1.1 <${a}> is not an archive address here`),
  shuttingDown: () => smtpError(421, '4.3.2 Archive is shutting down, try again later'),
} as const;
