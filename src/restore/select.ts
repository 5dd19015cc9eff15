import type { ArchiveReader } from '../db/archive-reader.js';
import type { Searcher } from '../search/search.js';
import { BlobNotFoundError, type BlobStore } from '../store/blob-store.js';
import type { RestoreMessage } from './imap-restore.js';

/** Which messages to restore: listed ids, or everything a search query finds. */
export type RestoreSelection = { ids: readonly number[] } | { query: string };

/** One restore request at most this many messages: it runs in one HTTP request and one IMAP connection. */
export const MAX_RESTORE_MESSAGES = 1000;

export interface SelectedMessage {
  id: number;
  sha256: string;
  date: Date;
}

export interface Selection {
  /** Oldest first, so the restored copies get UIDs in date order. */
  messages: SelectedMessage[];
  /** Listed ids with no such message. */
  notFound: number[];
  /** Listed ids of messages the scoped account takes no part in (never restored). */
  notParticipant: number[];
}

export class TooManyMessagesError extends Error {
  readonly code = 'too_many';
  constructor(readonly found: number) {
    super(`the query finds ${found} messages; restore at most ${MAX_RESTORE_MESSAGES} at a time (narrow it, e.g. with after:/before:)`);
  }
}

export interface SelectDeps {
  reader: ArchiveReader;
  searcher: Searcher;
}

/**
 * Resolves a selection to messages, limited to the account's mail when `scope` is set (a user):
 * a query is scoped in its SQL like any search, listed ids are checked one by one. Throws
 * QueryError for a bad query and TooManyMessagesError beyond MAX_RESTORE_MESSAGES.
 */
export function selectMessages(deps: SelectDeps, selection: RestoreSelection, scope: { userId: number } | null): Selection {
  let ids: number[];
  if ('ids' in selection) {
    ids = [...new Set(selection.ids)];
    if (ids.length > MAX_RESTORE_MESSAGES) throw new TooManyMessagesError(ids.length);
  } else {
    ids = [];
    let cursor: string | null = null;
    do {
      const page = deps.searcher.search(selection.query, { limit: 500, cursor, scope });
      if (page.total > MAX_RESTORE_MESSAGES) throw new TooManyMessagesError(page.total);
      ids.push(...page.items.map((h) => h.id));
      cursor = page.next_cursor;
    } while (cursor !== null);
  }
  const result: Selection = { messages: [], notFound: [], notParticipant: [] };
  for (const id of ids.sort((a, b) => a - b)) {
    const m = deps.reader.message(id);
    if (!m) result.notFound.push(id);
    else if (scope !== null && !deps.reader.isParticipant(id, scope.userId)) result.notParticipant.push(id);
    else result.messages.push({ id, sha256: m.sha256, date: new Date(m.sort_date) });
  }
  return result;
}

/**
 * The selected messages' archived bytes, read one at a time (a restore of 1000 large messages
 * must not hold them all in memory). A blob that cannot be read is reported through
 * `onUnreadable` and skipped: throwing would end the restore half-way with no account of what was
 * already appended.
 */
export async function* readMessages(store: BlobStore, messages: readonly SelectedMessage[], onUnreadable: (id: number, error: string) => void): AsyncGenerator<RestoreMessage> {
  for (const m of messages) {
    let raw: Buffer;
    try {
      raw = await store.get(m.sha256);
    } catch (err) {
      onUnreadable(m.id, err instanceof BlobNotFoundError ? 'blob_missing' : `blob unreadable: ${(err as Error).message}`);
      continue;
    }
    yield { id: m.id, raw, date: m.date };
  }
}
