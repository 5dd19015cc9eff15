import type { AuditVerifyReport } from '../../audit/verify.js';
import type { Config } from '../../config/settings.js';
import { createTokenStore, ROLES, type Role } from '../../db/tokens.js';
import { createUserStore } from '../../db/users.js';
import { recordCliAudit } from '../cli-audit.js';
import { createLogger } from '../../log/logger.js';
import { rebuildDatabase } from '../../integrity/rebuild.js';
import { verifyArchive } from '../../integrity/verify.js';
import { LockedError } from '../../runtime/lock.js';
import { openArchiveDb } from '../context.js';
import { CliError } from '../errors.js';
import { createProgress, type Progress } from '../progress.js';
import { openDatabase } from '../../db/database.js';
import { dataPaths } from '../../runtime/paths.js';

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

export async function tokenCreate(config: Config, opts: { role?: string; name?: string; user?: string }): Promise<void> {
  if (!opts.role || !ROLES.includes(opts.role as Role)) throw new CliError(`--role must be one of ${ROLES.join(', ')}`, 2);
  if ((opts.role === 'user') !== (opts.user !== undefined)) throw new CliError('a user token needs --user ACCOUNT (the account whose mail it may read); other roles take none', 2);
  // Creating the first token may come before the first start: create the database if needed.
  const db = openDatabase({ file: dataPaths(config.dataDir).db });
  let created;
  try {
    const owner = opts.user !== undefined ? createUserStore(db).get(opts.user) : null;
    if (opts.user !== undefined && !owner) throw new CliError(`no account ${opts.user} (see spindle user list)`);
    created = createTokenStore(db).create({ role: opts.role as Role, name: opts.name ?? `${opts.role}-token`, user: owner?.id ?? null });
  } finally {
    db.close();
  }
  const { token, info } = created;
  await recordCliAudit(config, { action: 'token.create', target: info.id, details: { role: info.role, name: info.name, ...(opts.user ? { user: opts.user } : {}) } });
  out(`Created token ${info.id} (${info.role}, "${info.name}"). It is shown only this once:\n\n  ${token}\n\nUse it as: curl -H "Authorization: Bearer ${token.slice(0, 8)}…" http://127.0.0.1:${config.httpPort}/api/search?q=...`);
}

export function tokenList(config: Config, opts: { json?: boolean }): void {
  const db = openArchiveDb(config);
  try {
    const tokens = createTokenStore(db).list();
    if (opts.json) return out(JSON.stringify(tokens, null, 2));
    if (tokens.length === 0) return out('No tokens. Create one with: spindle token create --role auditor');
    for (const t of tokens) {
      out(`${t.id}  ${t.role.padEnd(8)} ${t.name.padEnd(24)} created ${t.created_at}  ${t.revoked_at ? `REVOKED ${t.revoked_at}` : `last used ${t.last_used_at ?? 'never'}`}`);
    }
  } finally {
    db.close();
  }
}

export async function tokenRevoke(config: Config, id: string): Promise<void> {
  const db = openArchiveDb(config);
  try {
    if (!createTokenStore(db).revoke(id)) throw new CliError(`no active token ${id} (see spindle token list)`);
  } finally {
    db.close();
  }
  await recordCliAudit(config, { action: 'token.revoke', target: id });
  out(`Revoked token ${id}.`);
}

export async function rebuildCommand(config: Config): Promise<void> {
  const log = createLogger({ level: 'warn', format: config.logFormat });
  let bar: Progress | null = null;
  try {
    const r = await rebuildDatabase(config, log, (seq, last) => {
      bar ??= createProgress('rebuild', last);
      bar.update(seq);
    });
    (bar as Progress | null)?.stop();
    out(`Rebuilt the database from ${r.records} ledger records: ${r.messages} messages in ${r.seconds.toFixed(1)} s; ${r.auditEntries} audit entries indexed.` +
      (r.tokensCarried === null ? ' The old database was unreadable: create accounts and API tokens again.' : ` ${r.accountsCarried} accounts and ${r.tokensCarried} API tokens kept.`));
  } catch (err) {
    (bar as Progress | null)?.stop();
    if (err instanceof LockedError) throw new CliError(`${err.message}; stop it before rebuilding`);
    throw err;
  }
}

function auditLine(a: AuditVerifyReport): string {
  const brk = a.firstBroken;
  return `Audit:   ${a.entries} entries, ${brk ? `BROKEN at ${brk.file}:${brk.line} (entry ${brk.seq ?? '?'}): ${brk.reason}` : 'hash chain intact'}`;
}

export async function verifyCommand(config: Config, opts: { sample?: string; json?: boolean }): Promise<void> {
  let sample: number | undefined;
  if (opts.sample !== undefined) {
    if (!/^\d+$/.test(opts.sample) || Number(opts.sample) < 1) throw new CliError('--sample expects a positive number', 2);
    sample = Number(opts.sample);
  }
  let bar: Progress | null = null;
  const report = await verifyArchive({
    dataDir: config.dataDir,
    ...(sample !== undefined ? { sample } : {}),
    onProgress: (phase, done, total) => {
      if (phase !== 'blobs' || opts.json) return;
      bar ??= createProgress('verify blobs', total);
      bar.update(done);
    },
  });
  (bar as Progress | null)?.stop();
  if (opts.json) out(JSON.stringify(report, null, 2));
  else {
    const b = report.blobs;
    const brk = report.ledger.firstBreak;
    out([
      `Ledger:  ${report.ledger.records} records, ${brk ? `BROKEN at ${brk.file}:${brk.lineNo} (seq ${brk.seq ?? '?'}): ${brk.reason}` : 'hash chain intact'}`,
      `Blobs:   ${b.checked} of ${b.referenced} re-hashed${sample !== undefined ? ' (sample)' : ''}; ${b.missing.length} missing, ${b.corrupt.length} corrupt, ${b.orphaned.length} orphaned`,
      `Purges:  ${report.purges.records} purge records removed ${report.purges.messages} messages; ${b.purged} blobs deleted by them (not lost), ${b.purgePending.length} deletions pending`,
      report.links ? `Links:   ${report.links.checked} deliveries compared with the database; ${report.links.broken.length + report.links.more} broken${report.links.broken.length ? ' (spindle rebuild recreates the database)' : ''}` : 'Links:   no database to compare',
      auditLine(report.audit),
      ...b.missing.slice(0, 20).map((m) => `  MISSING  ${m.sha256}  (first delivered in ledger seq ${m.firstSeq})`),
      ...b.corrupt.slice(0, 20).map((m) => `  CORRUPT  ${m.sha256}  (ledger seq ${m.firstSeq}): ${m.reason}`),
      ...b.orphaned.slice(0, 20).map((o) => `  ORPHAN   ${o}`),
      ...(report.links?.broken ?? []).slice(0, 20).map((l) => `  LINK     ${l.kind} ${l.ref}`),
      ...b.purgePending.slice(0, 20).map((p) => `  PURGE PENDING  ${p.sha256}  (purged in ledger seq ${p.purgeSeq}; the next purge run or server start deletes it)`),
      report.ok ? 'OK: every archived message is present and intact.' : 'FAILED: see above.',
    ].join('\n'));
  }
  if (!report.ok) process.exitCode = 1;
}
