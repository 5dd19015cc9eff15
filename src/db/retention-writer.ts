import type { Chained, HoldBody, PurgeBody, PurgedMessage, RetentionRuleBody, StateRecord } from '../ledger/records.js';
import type { Db } from './database.js';

/**
 * Applies the ledger records that change what the archive holds without carrying mail (rules,
 * holds, purges) to the derived tables. It runs inside the archive writer's batch transaction, in
 * ledger order, on whichever connection indexes (the index thread live, the rebuild's own), so a
 * live archive and a rebuilt one end in the same state.
 */
export interface RetentionWriter {
  apply(record: StateRecord): void;
}

export function createRetentionWriter(db: Db): RetentionWriter {
  const q = {
    upsertRule: db.prepare(`INSERT INTO retention_rules (id, name, participants, query, period_count, period_unit, count_from, created_by, created_at, seq)
      VALUES (@id, @name, @participants, @query, @count, @unit, @from, @actor, @ts, @seq)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, participants = excluded.participants, query = excluded.query,
        period_count = excluded.period_count, period_unit = excluded.period_unit, count_from = excluded.count_from,
        created_by = excluded.created_by, created_at = excluded.created_at, seq = excluded.seq`),
    deleteRule: db.prepare('DELETE FROM retention_rules WHERE id = ?'),
    placeHold: db.prepare(`INSERT OR IGNORE INTO holds (id, case_name, reason, participants, query, since, until, placed_by, placed_at, place_seq)
      VALUES (@id, @case, @reason, @participants, @query, @since, @until, @actor, @ts, @seq)`),
    releaseHold: db.prepare(`UPDATE holds SET released_by = @actor, released_at = @ts, release_reason = @reason, release_seq = @seq
      WHERE id = @id AND released_at IS NULL`),
    messageExists: db.prepare('SELECT 1 FROM messages WHERE id = ?').pluck(),
    messageOfDelivery: db.prepare('SELECT message FROM deliveries WHERE seq = ?').pluck(),
    deliveriesOf: db.prepare('SELECT seq FROM deliveries WHERE message = ?').pluck(),
    deleteFts: db.prepare('DELETE FROM message_fts WHERE rowid = ?'),
    deleteAttachments: db.prepare('DELETE FROM attachments WHERE message = ?'),
    deleteRecipients: db.prepare('DELETE FROM recipients WHERE message = ?'),
    deleteParticipants: db.prepare('DELETE FROM participants WHERE message = ?'),
    deleteDeliveries: db.prepare('DELETE FROM deliveries WHERE message = ?'),
    deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
    blobInUse: db.prepare('SELECT 1 FROM deliveries WHERE blob_sha256 = ? LIMIT 1').pluck(),
    deleteBlobRow: db.prepare('DELETE FROM blobs WHERE sha256 = ?'),
    markBlob: db.prepare(`INSERT INTO purge_blobs (sha256, run, seq, state, done_at) VALUES (?, ?, ?, 'pending', NULL)
      ON CONFLICT(sha256) DO UPDATE SET run = excluded.run, seq = excluded.seq, state = 'pending', done_at = NULL`),
    tombstone: db.prepare(`INSERT OR IGNORE INTO tombstones (id, sha256, message_id, date, arrived, expired, rule, purged_at, run, seq, deliveries)
      VALUES (@id, @sha256, @messageId, @date, @arrived, @expired, @rule, @ts, @run, @seq, @deliveries)`),
    run: db.prepare(`INSERT INTO purge_runs (run, as_of, actor, started_at, finished_at, batches, messages, skipped, held, bytes, stored_bytes, first_seq, last_seq)
      VALUES (@run, @asOf, @actor, @ts, @finished, 1, @messages, @skipped, @held, @bytes, @storedBytes, @seq, @seq)
      ON CONFLICT(run) DO UPDATE SET finished_at = coalesce(excluded.finished_at, finished_at), batches = batches + 1,
        messages = messages + excluded.messages, skipped = skipped + excluded.skipped, held = held + excluded.held,
        bytes = bytes + excluded.bytes, stored_bytes = stored_bytes + excluded.stored_bytes, last_seq = excluded.last_seq`),
  };

  function applyRule(r: Chained<RetentionRuleBody>): void {
    if (r.action === 'remove') {
      q.deleteRule.run(r.rule.id);
      return;
    }
    const { rule } = r;
    q.upsertRule.run({
      id: rule.id, name: rule.name, participants: JSON.stringify(rule.match.participants), query: rule.match.query,
      count: rule.period?.count ?? null, unit: rule.period?.unit ?? null, from: rule.from, actor: r.actor, ts: r.ts, seq: r.seq,
    });
  }

  function applyHold(r: Chained<HoldBody>): void {
    const { hold } = r;
    if (r.action === 'release') {
      q.releaseHold.run({ id: hold.id, actor: r.actor, ts: r.ts, reason: r.reason, seq: r.seq });
      return;
    }
    q.placeHold.run({
      id: hold.id, case: hold.case, reason: r.reason, participants: JSON.stringify(hold.match.participants), query: hold.match.query,
      since: hold.match.since, until: hold.match.until, actor: r.actor, ts: r.ts, seq: r.seq,
    });
  }

  /**
   * Removes one message; false when it must stay. Live, the message is the one the purge chose.
   * During a rebuild it may be missing (its blobs are gone, so its deliveries were never indexed)
   * or a listed delivery may have become a message of its own: every message holding a listed
   * delivery goes, so replay ends where the live archive did.
   */
  function purgeMessage(m: PurgedMessage): boolean {
    const listed = new Set(m.deliveries.map((d) => d.seq));
    const messages = new Set<number>();
    if (q.messageExists.get(m.id)) messages.add(m.id);
    for (const seq of listed) {
      const owner = q.messageOfDelivery.get(seq) as number | undefined;
      if (owner !== undefined) messages.add(owner);
    }
    // A delivery that joined the message after the purge chose it (a duplicate arriving at that
    // moment) is not in the record: keep the message; the next run decides again.
    for (const id of messages) {
      if ((q.deliveriesOf.all(id) as number[]).some((seq) => !listed.has(seq))) return false;
    }
    for (const id of messages) {
      q.deleteFts.run(id);
      q.deleteAttachments.run(id);
      q.deleteRecipients.run(id);
      q.deleteParticipants.run(id);
      q.deleteDeliveries.run(id);
      q.deleteMessage.run(id);
    }
    return true;
  }

  function applyPurge(r: Chained<PurgeBody>): void {
    let messages = 0;
    let skipped = 0;
    let bytes = 0;
    let storedBytes = 0;
    for (const m of r.messages) {
      if (!purgeMessage(m)) {
        skipped++;
        continue;
      }
      q.tombstone.run({
        id: m.id, sha256: m.sha256, messageId: m.messageId, date: m.date, arrived: m.arrived, expired: m.expired,
        rule: m.rule, ts: r.ts, run: r.run, seq: r.seq, deliveries: JSON.stringify(m.deliveries),
      });
      for (const blob of m.blobs) {
        // Still named by a delivery that stays (it arrived again before this record): keep it.
        if (q.blobInUse.get(blob)) continue;
        q.deleteBlobRow.run(blob);
        q.markBlob.run(blob, r.run, r.seq);
      }
      messages++;
      bytes += m.bytes;
      storedBytes += m.storedBytes;
    }
    q.run.run({
      run: r.run, asOf: r.asOf, actor: r.actor, ts: r.ts, finished: r.final ? r.ts : null, messages, skipped,
      held: r.held, bytes, storedBytes, seq: r.seq,
    });
  }

  return {
    apply(record) {
      switch (record.type) {
        case 'retention-rule':
          return applyRule(record);
        case 'hold':
          return applyHold(record);
        case 'purge':
          return applyPurge(record);
      }
    },
  };
}
