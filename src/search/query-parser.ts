/** Tokenizer and recursive-descent parser turning a search query string into a query AST. */
import type { AndNode, DateNode, QueryNode, TextField, TextNode } from './query-ast.js';
import { at, QueryError } from './query-error.js';

type FieldName = Exclude<TextField, 'any'> | 'has' | 'after' | 'before' | 'msgid';
const FIELD_NAMES: ReadonlySet<string> = new Set<FieldName>([
  'from', 'to', 'cc', 'bcc', 'subject', 'has', 'after', 'before', 'msgid',
]);

/** Longest accepted query, in UTF-16 code units. */
export const MAX_QUERY_LENGTH = 4096;
/** Deepest accepted parenthesis nesting (FTS5's own expression parser has a small fixed stack). */
export const MAX_NESTING = 8;

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

function isSpace(ch: string | undefined): boolean {
  return ch !== undefined && (ch === '\0' || /\s/u.test(ch));
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
