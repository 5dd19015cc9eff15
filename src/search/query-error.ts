/** QueryError, thrown for any search query the user has to fix, and how its messages cite positions. */

/** Thrown for any query the user has to fix. `position` is a 0-based index into the input
 *  (UTF-16 code units); messages count characters from 1 ("at position 1" is the first). */
export class QueryError extends Error {
  readonly code = 'bad_query';
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

/** `at position N` for error messages: N counts characters from 1. */
export function at(pos: number): string {
  return `at position ${pos + 1}`;
}
