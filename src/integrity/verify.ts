import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import path from 'node:path';
import { readAuditIndexedSeq, verifyAuditChain, type AuditVerifyReport } from '../audit/verify.js';
import { checkChain, type ChainBreak } from '../ledger/segments.js';
import { SHA256_HEX } from '../store/blob-store.js';
import { listPacks, readPack } from '../store/pack.js';
import { dataPaths } from '../runtime/paths.js';
import { checkLinks, type LinksReport } from './links.js';
import { readPurgeState, type PurgeState } from './purge-state.js';

export interface VerifyReport {
  ok: boolean;
  ledger: { records: number; lastSeq: number; firstBreak: ChainBreak | null };
  blobs: {
    referenced: number;
    checked: number;
    missing: Array<{ sha256: string; firstSeq: number }>;
    corrupt: Array<{ sha256: string; firstSeq: number; reason: string }>;
    /** On disk but named by no ledger record: not lost mail, but unexplained. */
    orphaned: string[];
    /** Gone because every delivery that named them was purged (a ledgered purge, not a loss). */
    purged: number;
    /** Still on disk although every delivery that named them was purged: the deletion is pending (the next run or start finishes it). */
    purgePending: Array<{ sha256: string; purgeSeq: number }>;
  };
  /** Purge records in the ledger, and the messages they removed. */
  purges: { records: number; messages: number };
  /** Database against ledger (null: no database to compare); a broken link needs `spindle rebuild`. */
  links: LinksReport | null;
  /** The who-saw-what trail's own hash chain (a missing trail is an empty one). */
  audit: AuditVerifyReport;
}

export interface VerifyOptions {
  dataDir: string;
  /** Re-hash only this many blobs, chosen at random; all when absent. */
  sample?: number;
  onProgress?: (phase: 'ledger' | 'blobs', done: number, total: number) => void;
}

const blobFile = (blobs: string, sha: string) => path.join(blobs, sha.slice(0, 2), sha.slice(2, 4), `${sha}.eml.gz`);

/** Decompresses and re-hashes one blob; returns why it is bad, or null. */
async function checkBlob(file: string, sha256: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    await pipeline(fs.createReadStream(file), zlib.createGunzip(), new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb();
      },
    }));
  } catch (err) {
    return `cannot decompress: ${(err as Error).message}`;
  }
  const actual = hash.digest('hex');
  return actual === sha256 ? null : `content hashes to ${actual}`;
}

/**
 * Checks what the archive's truth rests on: the ledger's hash chain, that every blob the
 * ledger names exists and still hashes to its name, and the audit trail's chain. Read-only;
 * safe beside a running server.
 */
export async function verifyArchive(opts: VerifyOptions): Promise<VerifyReport> {
  const paths = dataPaths(opts.dataDir);
  // The index position first, then the chain: see readAuditIndexedSeq.
  const indexedSeq = readAuditIndexedSeq(paths.db);
  const audit = await verifyAuditChain(paths.audit, indexedSeq !== undefined ? { indexedSeq } : {});
  // Per blob: its first delivery, how many deliveries name it, how many of those were purged.
  const named = new Map<string, { firstSeq: number; deliveries: number; purged: number; purgeSeq: number }>();
  const purgeState: PurgeState = readPurgeState(paths.db);
  const purges = { records: 0, messages: 0 };
  let seen = 0;
  const ledger = await checkChain(paths.ledger, (r) => {
    if (r.type === 'delivery') {
      const b = named.get(r.blob);
      if (b) b.deliveries++;
      else named.set(r.blob, { firstSeq: r.seq, deliveries: 1, purged: 0, purgeSeq: 0 });
    } else if (r.type === 'purge') {
      purges.records++;
      for (const m of r.messages) {
        // An entry the database did not apply (a duplicate joined the message) removed nothing.
        if (!purgeState.applied(r.seq, m.id)) continue;
        purges.messages++;
        for (const d of m.deliveries) {
          const b = named.get(d.blob);
          if (b) {
            b.purged++;
            b.purgeSeq = r.seq;
          }
        }
      }
    }
    if (++seen % 10_000 === 0) opts.onProgress?.('ledger', seen, seen);
  });
  // Blobs some delivery still needs must be there; the rest were purged.
  const referenced = new Map<string, number>();
  const gone = new Map<string, number>();
  for (const [sha, b] of named) {
    if (b.deliveries > b.purged) referenced.set(sha, b.firstSeq);
    else gone.set(sha, b.purgeSeq);
  }

  let targets = [...referenced.entries()];
  if (opts.sample !== undefined && opts.sample < targets.length) {
    for (let i = targets.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [targets[i], targets[j]] = [targets[j]!, targets[i]!];
    }
    targets = targets.slice(0, opts.sample);
  }
  // Blobs of a crashed server may still sit only in the blob journal (replayed on the next start).
  const journaled = new Map<string, boolean>();
  for (const pack of listPacks(path.join(paths.blobs, 'journal'))) {
    for (const r of readPack(pack.file)) if (r.valid || !journaled.has(r.sha256)) journaled.set(r.sha256, r.valid);
  }
  const missing: VerifyReport['blobs']['missing'] = [];
  const corrupt: VerifyReport['blobs']['corrupt'] = [];
  let checked = 0;
  const queue = targets.slice();
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [sha256, firstSeq] = next;
      const file = blobFile(paths.blobs, sha256);
      if (!fs.existsSync(file)) {
        const inJournal = journaled.get(sha256);
        if (inJournal === undefined) missing.push({ sha256, firstSeq });
        else if (!inJournal) corrupt.push({ sha256, firstSeq, reason: 'only in the blob journal, and that copy is damaged' });
      } else {
        const reason = await checkBlob(file, sha256);
        if (reason) corrupt.push({ sha256, firstSeq, reason });
      }
      checked++;
      if (checked % 100 === 0) opts.onProgress?.('blobs', checked, targets.length);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  opts.onProgress?.('blobs', checked, targets.length);

  const orphaned: string[] = [];
  const purgePending: VerifyReport['blobs']['purgePending'] = [];
  if (fs.existsSync(paths.blobs)) {
    for (const a of fs.readdirSync(paths.blobs).filter((n) => /^[0-9a-f]{2}$/.test(n))) {
      for (const b of fs.readdirSync(path.join(paths.blobs, a))) {
        for (const name of fs.readdirSync(path.join(paths.blobs, a, b))) {
          const sha = name.replace(/\.eml\.gz$/, '');
          const purgeSeq = gone.get(sha);
          if (purgeSeq !== undefined) {
            purgePending.push({ sha256: sha, purgeSeq });
            gone.delete(sha);
          } else if (!SHA256_HEX.test(sha) || !referenced.has(sha)) orphaned.push(path.join(a, b, name));
        }
      }
    }
  }
  const links = await checkLinks(paths.db, paths.ledger);
  missing.sort((x, y) => x.firstSeq - y.firstSeq);
  corrupt.sort((x, y) => x.firstSeq - y.firstSeq);
  return {
    ok: ledger.firstBreak === null && missing.length === 0 && corrupt.length === 0 && audit.ok && (links === null || links.broken.length === 0),
    ledger,
    blobs: { referenced: referenced.size, checked, missing, corrupt, orphaned, purged: gone.size, purgePending },
    purges,
    links,
    audit,
  };
}
