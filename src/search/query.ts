/**
 * Spindle's search query language, public entry point: re-exports the parser, the AST types and
 * the compiler (query-parser.ts, query-ast.ts, query-compile.ts).
 *
 * Spindle's search query language: a small Gmail-like syntax (`from:alice "quarterly report"
 * -draft after:2024-01-01`) parsed into an AST and compiled into an SQLite FTS5 MATCH expression
 * plus a few non-FTS filters (message-id range for dates, exact Message-ID values).
 *
 * Pure functions: no database access. The user-facing reference is docs/search.md.
 */

export { QueryError } from './query-error.js';
export type { AndNode, DateNode, HasNode, MsgIdNode, NotNode, OrNode, QueryNode, TextField, TextNode } from './query-ast.js';
export { MAX_NESTING, MAX_QUERY_LENGTH, parseQuery } from './query-parser.js';
export { compileQuery, idLowerBoundForTime, type CompiledQuery } from './query-compile.js';
