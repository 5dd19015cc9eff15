/** The search query AST: the node types parseQuery produces and compileQuery consumes. */

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
