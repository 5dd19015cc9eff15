/**
 * Spindle's search query language: a small Gmail-like syntax (`from:alice "quarterly report"
 * -draft after:2024-01-01`) parsed into an AST and compiled into an SQLite FTS5 MATCH expression
 * plus a few non-FTS filters (message-id range for dates, exact Message-ID values).
 *
 * Pure functions: no database access. The user-facing reference is docs/search.md.
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

/** Which columns a text term searches. `any` = every column except `flags`. */
export type TextField = 'any' | 'from' | 'to' | 'cc' | 'bcc' | 'subject';

/** A word, `word*` prefix, or "quoted phrase", optionally restricted to a field. */
export interface TextNode {
  kind: 'text';
  field: TextField;
  /** The user's text, unescaped (without the surrounding quotes or the trailing `*`). */
  value: string;
  /** `word*` / `"some phr"*`: the last token is a prefix. */
  prefix: boolean;
  /** Written as a "quoted phrase". */
  quoted: boolean;
  position: number;
}

/** `has:attachment`. */
export interface HasNode {
  kind: 'has';
  what: 'attachment';
  position: number;
}

/** `after:YYYY-MM-DD` (inclusive, from 00:00 UTC) / `before:YYYY-MM-DD` (exclusive). */
export interface DateNode {
  kind: 'date';
  op: 'after' | 'before';
  /** Normalized `YYYY-MM-DD`. */
  date: string;
  /** That day at 00:00 UTC, in milliseconds since the epoch. */
  ms: number;
  position: number;
}

/** `msgid:<abc@host>`: exact Message-ID, stored without angle brackets. */
export interface MsgIdNode {
  kind: 'msgid';
  value: string;
  position: number;
}

/** Implicit AND: the query root (always an AndNode, possibly with no children) and `( ... )` groups. */
export interface AndNode {
  kind: 'and';
  children: QueryNode[];
  position: number;
}

/** `a OR b OR c` (at least two children; children are never NotNodes). */
export interface OrNode {
  kind: 'or';
  children: QueryNode[];
  position: number;
}

/** `-term`, `-"phrase"`, `-field:value`, `-( ... )`. */
export interface NotNode {
  kind: 'not';
  child: QueryNode;
  position: number;
}

export type QueryNode = AndNode | OrNode | NotNode | TextNode | HasNode | DateNode | MsgIdNode;

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

type FieldName = Exclude<TextField, 'any'> | 'has' | 'after' | 'before' | 'msgid';
const FIELD_NAMES: ReadonlySet<string> = new Set<FieldName>([
  'from', 'to', 'cc', 'bcc', 'subject', 'has', 'after', 'before', 'msgid',
]);

/** Longest accepted query, in UTF-16 code units. */
export const MAX_QUERY_LENGTH = 4096;
/** Deepest accepted parenthesis nesting (FTS5's own expression parser has a small fixed stack). */
export const MAX_NESTING = 8;

const ID_TIEBREAK_BITS = 2 ** 20;

/** Smallest message id (rowid) for a message dated at `ms` (ms since the epoch). */
export function idLowerBoundForTime(ms: number): number {
  if (!Number.isFinite(ms)) throw new RangeError(`idLowerBoundForTime: not a finite time: ${ms}`);
  return Math.floor(ms / 1000) * ID_TIEBREAK_BITS;
}

/**
 * True when FTS5's unicode61 tokenizer would find at least one token in `text`. unicode61 (default
 * categories) treats letters, numbers, private-use and unassigned code points as token characters
 * and everything else (spaces, punctuation, symbols, emoji, controls) as separators. JS and SQLite
 * may disagree on a few code points assigned in newer Unicode versions; the worst case is a term
 * that matches nothing, never an FTS5 error (an empty phrase is valid FTS5).
 */
function hasTokenChars(text: string): boolean {
  return /[\p{L}\p{N}\p{Co}\p{Cn}]/u.test(text);
}

/** Quote user text as an FTS5 string literal. */
function ftsString(text: string): string {
  return '"' + text.replace(/\0/g, ' ').replace(/"/g, '""') + '"';
}

function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && (ch === '\0' || /\s/u.test(ch));
}

function at(pos: number): string {
  return `at position ${pos + 1}`;
}

/** Short, printable excerpt of user text for error messages. */
function show(text: string): string {
  const clean = text.replace(/[\0-\x1f\x7f]/g, ' ');
  return JSON.stringify(clean.length > 40 ? clean.slice(0, 40) + '…' : clean);
}

interface Operand {
  node: QueryNode | null;
  negated: boolean;
  position: number;
  end: number;
}

class Parser {
  private i = 0;
  private depth = 0;

  constructor(private readonly s: string) {}

  parse(): AndNode {
    const children = this.sequence();
    return { kind: 'and', children, position: 0 };
  }

  private peek(offset = 0): string | undefined {
    return this.s[this.i + offset];
  }

  private eof(): boolean {
    return this.i >= this.s.length;
  }

  private skipSpace(): void {
    while (!this.eof() && isSpace(this.peek())) this.i++;
  }

  /** `)` only closes a group inside one; at the top level it is ordinary text. */
  private atClose(): boolean {
    return this.depth > 0 && this.peek() === ')';
  }

  /** Characters that end a word: whitespace, end of input, and `)` inside a group. */
  private atWordEnd(): boolean {
    return this.eof() || isSpace(this.peek()) || this.atClose();
  }

  private wordEndFrom(start: number): number {
    let j = start;
    while (j < this.s.length) {
      const ch = this.s[j];
      if (isSpace(ch) || (this.depth > 0 && ch === ')')) break;
      j++;
    }
    return j;
  }

  private atOrKeyword(): boolean {
    return this.s.startsWith('OR', this.i) && this.wordEndFrom(this.i) === this.i + 2;
  }

  /** Terms up to the end of input or the `)` closing the current group (implicit AND). */
  private sequence(): QueryNode[] {
    const out: QueryNode[] = [];
    for (;;) {
      this.skipSpace();
      if (this.eof() || this.atClose()) return out;
      const node = this.orExpr();
      if (node) out.push(node);
    }
  }

  private orExpr(): QueryNode | null {
    const start = this.i;
    if (this.atOrKeyword()) {
      throw new QueryError(`OR ${at(start)} needs a term before it`, start);
    }
    const operands: Operand[] = [this.unary()];
    const orPositions: number[] = [];
    for (;;) {
      const save = this.i;
      this.skipSpace();
      if (!this.atOrKeyword()) {
        this.i = save;
        break;
      }
      const orPos = this.i;
      this.i += 2;
      this.skipSpace();
      if (this.eof() || this.atClose() || this.atOrKeyword()) {
        throw new QueryError(`OR ${at(orPos)} needs a term after it`, orPos);
      }
      orPositions.push(orPos);
      operands.push(this.unary());
    }
    if (operands.length > 1) {
      for (const op of operands) {
        // An excluded word with nothing searchable in it (`-...`) was dropped: no harm done.
        if (op.node !== null && (op.negated || op.node.kind === 'not')) {
          const text = this.s.slice(op.position, op.end);
          throw new QueryError(
            `OR cannot be combined with an excluded term: ${show(text)} ${at(op.position)}; ` +
              `remove the "-" or move the exclusion outside the OR`,
            op.position,
          );
        }
      }
    }
    const nodes = operands.map((o) => o.node).filter((n): n is QueryNode => n !== null);
    if (nodes.length === 0) return null;
    if (nodes.length === 1) return nodes[0]!;
    return { kind: 'or', children: nodes, position: start };
  }

  private unary(): Operand {
    const start = this.i;
    const next = this.peek(1);
    if (this.peek() === '-' && next !== undefined && !isSpace(next) && !(this.depth > 0 && next === ')')) {
      this.i++;
      const child = this.atom();
      return {
        node: child ? { kind: 'not', child, position: start } : null,
        negated: true,
        position: start,
        end: this.i,
      };
    }
    const node = this.atom();
    return { node, negated: false, position: start, end: this.i };
  }

  private atom(): QueryNode | null {
    const start = this.i;
    const ch = this.peek();
    if (ch === '(') return this.group();
    if (ch === '"') {
      const value = this.quoted();
      const prefix = this.stars();
      return this.textNode('any', value, prefix, true, start);
    }
    const field = /([A-Za-z]+):/y;
    field.lastIndex = this.i;
    const m = field.exec(this.s);
    if (m && FIELD_NAMES.has(m[1]!.toLowerCase())) {
      this.i += m[0].length;
      return this.fieldValue(m[1]!.toLowerCase() as FieldName, start);
    }
    // A plain word (unknown `foo:bar` included: it is searched as text).
    let word = this.word();
    let prefix = false;
    const stripped = word.replace(/\*+$/, '');
    if (stripped !== word && stripped.length > 0) {
      word = stripped;
      prefix = true;
    }
    return this.textNode('any', word, prefix, false, start);
  }

  private group(): QueryNode | null {
    const open = this.i;
    if (this.depth >= MAX_NESTING) {
      throw new QueryError(`too many nested parentheses ${at(open)} (at most ${MAX_NESTING} levels)`, open);
    }
    this.i++;
    this.depth++;
    const children = this.sequence();
    if (this.eof()) {
      throw new QueryError(`missing ")" for the "(" ${at(open)}`, open);
    }
    this.i++; // ')'
    this.depth--;
    if (children.length === 0) return null;
    if (children.length === 1) return children[0]!;
    return { kind: 'and', children, position: open };
  }

  /** Reads `"..."` starting at the opening quote; returns the content. */
  private quoted(): string {
    const open = this.i;
    const close = this.s.indexOf('"', open + 1);
    if (close < 0) {
      throw new QueryError(`unterminated quote starting ${at(open)}`, open);
    }
    this.i = close + 1;
    return this.s.slice(open + 1, close);
  }

  /** Consumes `*`s directly after a quoted phrase; true when there was at least one. */
  private stars(): boolean {
    const start = this.i;
    while (this.peek() === '*') this.i++;
    return this.i > start;
  }

  private word(): string {
    const start = this.i;
    this.i = this.wordEndFrom(start);
    return this.s.slice(start, this.i);
  }

  private fieldValue(name: FieldName, start: number): QueryNode | null {
    const valuePos = this.i;
    if (this.atWordEnd()) {
      throw new QueryError(`${name}: needs a value (${at(start)})`, start);
    }
    if (this.peek() === '(') {
      throw new QueryError(
        `${name}: ${at(start)} takes a single word or "quoted phrase"; ${name}:( ... ) groups are not supported`,
        start,
      );
    }
    let value: string;
    let quoted = false;
    let prefix = false;
    if (this.peek() === '"') {
      value = this.quoted();
      quoted = true;
      if (name !== 'msgid') prefix = this.stars();
    } else if (name === 'msgid' && this.peek() === '<') {
      // <...> may contain ")" even inside a group; it ends at ">" (or, without one, like a word).
      let j = this.i;
      while (j < this.s.length && this.s[j] !== '>' && !isSpace(this.s[j])) j++;
      if (this.s[j] === '>') this.i = j + 1;
      value = this.s.slice(valuePos, this.i) + this.word();
    } else {
      value = this.word();
      if (name !== 'msgid' && name !== 'has' && name !== 'after' && name !== 'before') {
        const stripped = value.replace(/\*+$/, '');
        if (stripped !== value) {
          if (stripped.length === 0) {
            throw new QueryError(`${name}: ${at(start)} needs a word before the "*"`, start);
          }
          value = stripped;
          prefix = true;
        }
      }
    }

    switch (name) {
      case 'has': {
        const v = value.trim().toLowerCase();
        if (v === 'attachment' || v === 'attachments') return { kind: 'has', what: 'attachment', position: start };
        throw new QueryError(`has: ${at(start)} only supports has:attachment, got ${show(value)}`, start);
      }
      case 'after':
      case 'before':
        return this.dateNode(name, value, start);
      case 'msgid': {
        let v = value.trim();
        if (v.startsWith('<')) v = v.slice(1);
        if (v.endsWith('>')) v = v.slice(0, -1);
        v = v.trim();
        if (v.length === 0) throw new QueryError(`msgid: needs a value (${at(start)})`, start);
        return { kind: 'msgid', value: v.replace(/\0/g, ''), position: start };
      }
      default: {
        if (!hasTokenChars(value)) {
          if (value.trim().length === 0) throw new QueryError(`${name}: needs a value (${at(start)})`, start);
          throw new QueryError(
            `${name}: ${at(start)} has nothing searchable in ${show(value)}; use letters or digits`,
            start,
          );
        }
        return { kind: 'text', field: name, value, prefix, quoted, position: start };
      }
    }
  }

  private dateNode(op: 'after' | 'before', value: string, start: number): DateNode {
    const bad = (): QueryError =>
      new QueryError(`${op}: expects a date like 2024-03-01, got ${show(value)} (${at(start)})`, start);
    const m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(value.trim());
    if (!m) throw bad();
    const year = Number(m[1]);
    const month = Number(m[2]);
    const day = Number(m[3]);
    if (year < 1 || month < 1 || month > 12 || day < 1) throw bad();
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) throw bad();
    const date = `${m[1]}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
    return { kind: 'date', op, date, ms: d.getTime(), position: start };
  }

  private textNode(field: TextField, value: string, prefix: boolean, quoted: boolean, position: number): TextNode | null {
    // Text the tokenizer would turn into zero tokens (`-`, `...`, `*`, emoji) is dropped.
    if (!hasTokenChars(value)) return null;
    return { kind: 'text', field, value, prefix, quoted, position };
  }
}

/**
 * Parses a query into an AST. The root is always an AndNode (no children for an empty query).
 * Throws QueryError for syntax errors (unterminated quotes, unbalanced parentheses, bad dates,
 * empty field values, OR next to an excluded term). Semantic checks happen in compileQuery.
 */
export function parseQuery(input: string): AndNode {
  if (typeof input !== 'string') throw new QueryError('query must be a string');
  if (input.length > MAX_QUERY_LENGTH) {
    throw new QueryError(`query is too long (${input.length} characters; at most ${MAX_QUERY_LENGTH})`);
  }
  return new Parser(input).parse();
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
