import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Db } from '../db/database.js';
import type { HoldSpec, RetentionRule } from '../ledger/records.js';
import { createEvaluator } from './evaluate.js';

/** One message a purge would remove now. */
export interface Candidate {
  id: number;
  rule: string;
  /** When its retention ended (ms). */
  expires: number;
}

export interface RuleTotals {
  rule: string;
  messages: number;
  /** Original bytes and bytes on disk of the blobs that would be deleted. */
  bytes: number;
  stored_bytes: number;
}

export interface HeldMessage {
  id: number;
  message_id: string | null;
  rule: string;
  expired: string;
  holds: string[];
}

export interface PurgePlan {
  asOf: number;
  candidates: Candidate[];
  byRule: RuleTotals[];
  /** Expired messages kept by a hold: how many, and the first HELD_LIST_LIMIT of them. */
  heldCount: number;
  held: HeldMessage[];
}

export const HELD_LIST_LIMIT = 1000;

/** Bytes of the blobs that removing a message would free: those no other message's delivery names. */
export function blobBytes(db: Db): (message: number) => { bytes: number; stored: number } {
  const stmt = db.prepare(`SELECT coalesce(sum(b.size), 0) AS bytes, coalesce(sum(b.stored_size), 0) AS stored FROM blobs b
    WHERE b.sha256 IN (SELECT blob_sha256 FROM deliveries WHERE message = @m)
      AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.blob_sha256 = b.sha256 AND o.message <> @m)`);
  return (m) => stmt.get({ m }) as { bytes: number; stored: number };
}

/**
 * Walks the archive and lists what a purge at `asOf` removes: messages whose governing rule has
 * expired and that no active hold covers. Yields to the event loop between chunks, so a large
 * archive does not stall the server that runs it.
 */
export async function planPurge(db: Db, rules: readonly RetentionRule[], holds: readonly HoldSpec[], asOf: number): Promise<PurgePlan> {
  const evaluator = createEvaluator(db, rules, holds, asOf);
  const bytesOf = blobBytes(db);
  const candidates: Candidate[] = [];
  const totals = new Map<string, RuleTotals>();
  const held: HeldMessage[] = [];
  let heldCount = 0;
  for (const chunk of evaluator.chunks()) {
    for (const v of chunk) {
      if (!v.expired) continue;
      if (v.holds.length > 0) {
        heldCount++;
        if (held.length < HELD_LIST_LIMIT) {
          held.push({ id: v.facts.id, message_id: v.facts.messageId, rule: v.governing.rule, expired: new Date(v.governing.expires).toISOString(), holds: v.holds });
        }
        continue;
      }
      candidates.push({ id: v.facts.id, rule: v.governing.rule, expires: v.governing.expires });
      const t = totals.get(v.governing.rule) ?? { rule: v.governing.rule, messages: 0, bytes: 0, stored_bytes: 0 };
      const b = bytesOf(v.facts.id);
      t.messages++;
      t.bytes += b.bytes;
      t.stored_bytes += b.stored;
      totals.set(v.governing.rule, t);
    }
    await yieldToLoop();
  }
  return { asOf, candidates, byRule: [...totals.values()].sort((a, b) => a.rule.localeCompare(b.rule)), heldCount, held };
}
