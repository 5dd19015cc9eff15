/**
 * Compiles a parsed search query AST into an SQLite FTS5 MATCH expression plus non-FTS filters.
 *
 * Why every user term is quoted:
 * FTS5's MATCH argument is itself a small query language in which bare text is syntax: `AND`,
 * `OR`, `NOT`, `NEAR(`, `(`, `)`, `*`, `^`, `+`, `:` and `{...}` column filters all mean
 * something, and a bare token that is not a valid FTS5 "bareword" (`alice@example.com`, `é-mail`,
 * `re:`) is a syntax error. Passing user text through unquoted would therefore either throw
 * SQLite errors at users or let them reach columns they should not (such as the internal
 * `flags` column). So the compiler emits only three kinds of things:
 *   1. FTS5 operators and parentheses it generates itself;
 *   2. column names taken from the fixed whitelist in `FIELD_COLUMNS` below;
 *   3. user text, always inside an FTS5 double-quoted string with every `"` doubled (and NUL,
 *      which would end the string early at the C level, replaced by a space).
 * Inside an FTS5 string nothing is syntax: the tokenizer just splits the text into a phrase, which
 * is also what makes `from:example.com` mean "the tokens example, com next to each other".
 * The MATCH expression must still be passed to SQLite as a bound parameter, never spliced into SQL.
 */
import type { AndNode, DateNode, MsgIdNode, QueryNode, TextField, TextNode } from './query-ast.js';
import { at, QueryError } from './query-error.js';
import { parseQuery } from './query-parser.js';

export interface CompiledQuery {
  /** FTS5 MATCH expression, or null when the query has no full-text part (then the caller scans messages by id). */
  match: string | null;
  /** Inclusive lower / exclusive upper bounds on the message id (rowid) from after:/before:, or null. */
  minId: number | null;
  maxIdExclusive: number | null;
  /** Exact Message-ID filter values (without <>), ANDed; empty when none. Bind them as SQL parameters. */
  messageIds: string[];
  /** True when the query is empty (match null, no bounds, no msgid): list everything newest first. */
  empty: boolean;
}

/** Column whitelist: the ONLY column names that can ever appear in a compiled MATCH. */
const FIELD_COLUMNS: Readonly<Record<Exclude<TextField, 'any'>, readonly string[]>> = {
  from: ['sender'],
  to: ['rcpt_to', 'rcpt_cc', 'rcpt_bcc', 'rcpt_env'],
  cc: ['rcpt_cc'],
  bcc: ['rcpt_bcc'],
  subject: ['subject'],
};
const FLAGS_COLUMN = 'flags';
const HAS_ATTACHMENT_TOKEN = 'hasattachment';

const ID_TIEBREAK_BITS = 2 ** 20;

/** Smallest message id (rowid) for a message dated at `ms` (ms since the epoch). */
export function idLowerBoundForTime(ms: number): number {
  if (!Number.isFinite(ms)) throw new RangeError(`idLowerBoundForTime: not a finite time: ${ms}`);
  return Math.floor(ms / 1000) * ID_TIEBREAK_BITS;
}

/** Quote user text as an FTS5 string literal. */
function ftsString(text: string): string {
  return '"' + text.replace(/\0/g, ' ').replace(/"/g, '""') + '"';
}

interface Expr {
  text: string;
  /** A single term (no top-level operator), safe to embed without parentheses. */
  atom: boolean;
}

function wrap(e: Expr): string {
  return e.atom ? e.text : `(${e.text})`;
}

const ONLY_EXCLUDES = 'add at least one word or field to search for; a query cannot only exclude';

type Place = 'top' | 'or' | 'not';

interface Filters {
  after: DateNode | null;
  before: DateNode | null;
  messageIds: string[];
}

function compileText(node: TextNode): Expr {
  const phrase = ftsString(node.value) + (node.prefix ? ' *' : '');
  if (node.field === 'any') return { text: `- {${FLAGS_COLUMN}} : ${phrase}`, atom: true };
  return { text: `{${FIELD_COLUMNS[node.field].join(' ')}} : ${phrase}`, atom: true };
}

function filterError(node: DateNode | MsgIdNode, place: Place): QueryError {
  const name = node.kind === 'date' ? `${node.op}:` : 'msgid:';
  if (place === 'not') {
    const hint = node.kind === 'date' ? `; use ${node.op === 'after' ? 'before:' : 'after:'} instead` : '';
    return new QueryError(`${name} ${at(node.position)} cannot be excluded with "-"${hint}`, node.position);
  }
  return new QueryError(`${name} ${at(node.position)} cannot be used inside OR`, node.position);
}

/** Compiles a node that must match (positive). Returns null when nothing searchable remains. */
function compilePositive(node: QueryNode, place: Place, filters: Filters): Expr | null {
  switch (node.kind) {
    case 'text':
      return compileText(node);
    case 'has':
      return { text: `{${FLAGS_COLUMN}} : ${ftsString(HAS_ATTACHMENT_TOKEN)}`, atom: true };
    case 'date':
    case 'msgid':
      throw filterError(node, place);
    case 'or': {
      const parts = node.children
        .map((c) => compilePositive(c, 'or', filters))
        .filter((e): e is Expr => e !== null);
      if (parts.length === 0) return null;
      if (parts.length === 1) return parts[0]!;
      return { text: parts.map(wrap).join(' OR '), atom: false };
    }
    case 'and':
      return compileAnd(node, place, filters);
    case 'not':
      // Only reachable through a double exclusion such as -(-a).
      throw new QueryError(`${ONLY_EXCLUDES} (${at(node.position)})`, node.position);
  }
}

function compileAnd(node: AndNode, place: Place, filters: Filters): Expr | null {
  const positives: Expr[] = [];
  const negatives: Expr[] = [];
  const negationPositions: number[] = [];

  const visit = (child: QueryNode): void => {
    switch (child.kind) {
      case 'and':
        child.children.forEach(visit); // a nested group in an AND is just more AND
        return;
      case 'not': {
        const inner = child.child;
        if (inner.kind === 'date' || inner.kind === 'msgid') throw filterError(inner, 'not');
        const e = compilePositive(inner, 'not', filters);
        if (e) {
          negatives.push(e);
          negationPositions.push(child.position);
        }
        return;
      }
      case 'date':
        if (place !== 'top') throw filterError(child, place);
        if (child.op === 'after') {
          if (!filters.after || child.ms > filters.after.ms) filters.after = child;
        } else if (!filters.before || child.ms < filters.before.ms) {
          filters.before = child;
        }
        return;
      case 'msgid':
        if (place !== 'top') throw filterError(child, place);
        if (!filters.messageIds.includes(child.value)) filters.messageIds.push(child.value);
        return;
      default: {
        const e = compilePositive(child, place, filters);
        if (e) positives.push(e);
      }
    }
  };
  node.children.forEach(visit);

  if (positives.length === 0) {
    if (negatives.length === 0) return null;
    if (place === 'top') throw new QueryError(ONLY_EXCLUDES, negationPositions[0]);
    throw new QueryError(`${ONLY_EXCLUDES} (the group ${at(node.position)})`, node.position);
  }

  const pos = positives.length === 1 ? positives[0]! : { text: positives.map(wrap).join(' AND '), atom: false };
  if (negatives.length === 0) return pos;
  const neg = negatives.length === 1 ? negatives[0]!.text : negatives.map(wrap).join(' OR ');
  return { text: `${wrap(pos)} NOT (${neg})`, atom: false };
}

function clampId(id: number): number {
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, id));
}

/** Parses and compiles a query. Throws QueryError with a plain-English message on bad input. */
export function compileQuery(input: string): CompiledQuery {
  const root = parseQuery(input);
  const filters: Filters = { after: null, before: null, messageIds: [] };
  const expr = compileAnd(root, 'top', filters);
  const { after, before } = filters;

  if (after && before) {
    if (after.ms > before.ms) {
      throw new QueryError(
        `after: is later than before: (after:${after.date} ${at(after.position)}, before:${before.date})`,
        after.position,
      );
    }
    if (after.ms === before.ms) {
      const next = new Date(after.ms + 86_400_000).toISOString().slice(0, 10);
      throw new QueryError(
        `after:${after.date} and before:${before.date} ${at(after.position)} leave no time in between; ` +
          `for that one day use after:${after.date} before:${next}`,
        after.position,
      );
    }
  }

  const match = expr ? expr.text : null;
  const minId = after ? clampId(idLowerBoundForTime(after.ms)) : null;
  const maxIdExclusive = before ? clampId(idLowerBoundForTime(before.ms)) : null;
  const messageIds = filters.messageIds;
  return {
    match,
    minId,
    maxIdExclusive,
    messageIds,
    empty: match === null && minId === null && maxIdExclusive === null && messageIds.length === 0,
  };
}
