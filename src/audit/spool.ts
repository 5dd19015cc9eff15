import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../store/dir-sync.js';
import { toAuditBody, type AuditInput } from './entries.js';
import type { AuditTrail } from './trail.js';

/**
 * Audit entries from commands run beside a live server. The server is the trail's one writer, so a
 * command (`spindle user add`, `token create`, …) drops its entry here, durably (temp, fsync,
 * rename, directory fsync), and the server moves it into the chain within seconds; a server that
 * is not running takes it at its next start. An entry is deleted only after the chain holds it, so
 * a crash in between can at worst record it twice (each carries its spool id), never lose it.
 */
export const spoolDir = (auditDir: string): string => path.join(auditDir, 'spool');

export async function writeSpoolEntry(auditDir: string, input: AuditInput): Promise<string> {
  toAuditBody(input); // refuse a bad entry now, not when the server reads it
  const dir = spoolDir(auditDir);
  fs.mkdirSync(dir, { recursive: true });
  const id = `${Date.now().toString().padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
  const entry: AuditInput = { ...input, details: { ...input.details, spool_id: id, spooled_at: new Date().toISOString() } };
  const tmp = path.join(dir, `${id}.tmp`);
  const fd = fs.openSync(tmp, 'wx');
  try {
    fs.writeSync(fd, JSON.stringify(entry));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(dir, `${id}.json`));
  await fsyncDir(dir);
  return id;
}

/** Moves spooled entries into the chain, oldest first; returns how many. */
export async function ingestSpool(trail: Pick<AuditTrail, 'record'>, auditDir: string, onBad: (file: string, err: unknown) => void): Promise<number> {
  const dir = spoolDir(auditDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    let input: AuditInput;
    try {
      input = JSON.parse(fs.readFileSync(file, 'utf8')) as AuditInput;
      toAuditBody(input);
    } catch (err) {
      // Kept aside, not deleted: it may be the only trace of what a command did.
      fs.renameSync(file, `${file}.bad`);
      onBad(file, err);
      continue;
    }
    await trail.record(input);
    fs.rmSync(file);
    n++;
  }
  return n;
}
