import type { Statement } from 'better-sqlite3';
import type { Db } from '../db/database.js';
import type { HoldSpec, RetentionRule } from '../ledger/records.js';
import { selectorSql } from '../search/selector.js';
import { addPeriod } from './period.js';

/** What retention needs to know about one message. */
export interface MessageFacts {
  id: number;
  /** First delivery, ISO and ms. */
  firstSeen: string;
  arrived: number;
  /** The message date as search shows it: the Date header when plausible, else arrival (ms). */
  dated: number;
  /** The Date header as parsed (ISO), or null. */
  date: string | null;
  messageId: string | null;
}

export interface RuleVerdict {
  rule: string;
  /** When the rule lets the message go (ms); Infinity: never. */
  expires: number;
}

export interface Verdict {
  facts: MessageFacts;
  /** Rules that match; when none does, the default alone. */
  matched: RuleVerdict[];
  /** The longest of them: keeping too long is the safe error. */
  governing: RuleVerdict;
  /** Expired as of the evaluation instant (whatever the holds say). */
  expired: boolean;
  /** Active holds that cover the message. */
  holds: string[];
}

export interface Evaluator {
  /** Verdicts for the messages with lo <= id <= hi, in id order. */
  range(lo: number, hi: number): Verdict[];
  /** Verdicts for the whole archive, a chunk of messages at a time, in id order. */
  chunks(size?: number): Generator<Verdict[]>;
}

interface Matcher {
  id: string;
  stmt: Statement;
  params: (lo: number, hi: number) => unknown[];
}

/**
 * Decides, for each message, which rules match, which one governs (the longest period), whether
 * it has expired at `asOf`, and which holds cover it. Rules and holds are evaluated as SQL per
 * range of ids, so holds cover mail that arrived after they were placed, and a large archive is
 * walked in small steps. `rules` must hold the default (id 'default'), which applies only when no
 * other rule matches.
 */
export function createEvaluator(db: Db, rules: readonly RetentionRule[], holds: readonly HoldSpec[], asOf: number): Evaluator {
  const found = rules.find((r) => r.id === 'default');
  if (!found) throw new Error('the rules must include the default');
  const fallback: RetentionRule = found;
  const byId = new Map(rules.map((r) => [r.id, r]));
  const matcher = (id: string, sel: Parameters<typeof selectorSql>[0]): Matcher => {
    const s = selectorSql(sel);
    return { id, stmt: db.prepare(`SELECT m.id FROM messages m WHERE m.id BETWEEN ? AND ? AND ${s.sql}`).pluck(), params: s.params };
  };
  const ruleMatchers = rules.filter((r) => r.id !== 'default').map((r) => matcher(r.id, r.match));
  const holdMatchers = holds.map((h) => matcher(h.id, h.match));
  const rows = db.prepare('SELECT id, first_seen, sort_time, date, message_id FROM messages WHERE id BETWEEN ? AND ? ORDER BY id');
  const next = db.prepare('SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?').pluck();

  const hits = (m: Matcher, lo: number, hi: number): Set<number> => new Set(m.stmt.all(lo, hi, ...m.params(lo, hi)) as number[]);

  function verdictOf(rule: RetentionRule, facts: MessageFacts): RuleVerdict {
    return { rule: rule.id, expires: addPeriod(rule.from === 'date' ? facts.dated : facts.arrived, rule.period) };
  }

  function range(lo: number, hi: number): Verdict[] {
    const ruleHits = ruleMatchers.map((m) => ({ id: m.id, ids: hits(m, lo, hi) }));
    const holdHits = holdMatchers.map((m) => ({ id: m.id, ids: hits(m, lo, hi) }));
    return (rows.all(lo, hi) as Array<{ id: number; first_seen: string; sort_time: number; date: string | null; message_id: string | null }>).map((r) => {
      const facts: MessageFacts = {
        id: r.id, firstSeen: r.first_seen, arrived: Date.parse(r.first_seen), dated: r.sort_time, date: r.date, messageId: r.message_id,
      };
      const matching = ruleHits.filter((h) => h.ids.has(r.id)).map((h) => byId.get(h.id)!);
      const matched = (matching.length ? matching : [fallback]).map((rule) => verdictOf(rule, facts));
      const governing = matched.reduce((best, v) => (v.expires > best.expires ? v : best));
      return {
        facts, matched, governing, expired: governing.expires <= asOf,
        holds: holdHits.filter((h) => h.ids.has(r.id)).map((h) => h.id),
      };
    });
  }

  function* chunks(size = 2000): Generator<Verdict[]> {
    let after = -Number.MAX_SAFE_INTEGER;
    for (;;) {
      const ids = next.all(after, size) as number[];
      if (ids.length === 0) return;
      after = ids.at(-1)!;
      yield range(ids[0]!, after);
    }
  }

  return { range, chunks };
}
