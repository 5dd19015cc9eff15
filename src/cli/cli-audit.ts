import os from 'node:os';
import pino from 'pino';
import type { AuditAction, AuditDetails, AuditOutcome } from '../audit/entries.js';
import { ingestSpool, writeSpoolEntry } from '../audit/spool.js';
import { openAuditTrail } from '../audit/trail.js';
import type { Config } from '../config/settings.js';
import { openDatabase } from '../db/database.js';
import { acquireLock, LockedError } from '../runtime/lock.js';
import { dataPaths } from '../runtime/paths.js';

/**
 * Puts a change made from the command line on the audit trail, as `cli:<OS user>`. With no server
 * running, the command appends to the chain itself (holding the data-directory lock); beside a
 * live server, which owns the chain, it spools the entry for the server to take in.
 */
export async function recordCliAudit(config: Config, entry: { action: AuditAction; target: string | null; details?: AuditDetails; outcome?: AuditOutcome }): Promise<void> {
  const paths = dataPaths(config.dataDir);
  const input = {
    actor: `cli:${os.userInfo().username}`, role: null, source: null, action: entry.action, target: entry.target,
    outcome: entry.outcome ?? 'ok', details: entry.details ?? {},
  };
  let release: () => void;
  try {
    release = acquireLock(paths.lock);
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    await writeSpoolEntry(paths.audit, input);
    return;
  }
  const db = openDatabase({ file: paths.db });
  try {
    const log = pino({ level: 'warn' });
    const trail = await openAuditTrail({ dir: paths.audit, db, log });
    try {
      await ingestSpool(trail, paths.audit, (file, err) => log.warn({ event: 'audit.spool_bad', file, err }, 'unreadable spooled audit entry kept aside'));
      await trail.record(input);
    } finally {
      await trail.close();
    }
  } finally {
    db.close();
    release();
  }
}
