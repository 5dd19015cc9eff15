import path from 'node:path';
import { testConfig } from './archive.js';
import { silentLog } from './tmp.js';
import { rebuildDatabase } from '../../src/integrity/rebuild.js';
import { openLedger } from '../../src/ledger/ledger.js';
import { createFsBlobStore } from '../../src/store/fs-store.js';

export interface SeedMessage {
  /** The exact bytes to archive: no SMTP in between, so LF-only or unterminated messages stay as they are. */
  raw: Buffer | string;
  mailFrom?: string;
  /** Envelope recipients as Postfix would journal them (archive addresses); default archive@localhost. */
  rcpts?: string[];
}

/**
 * Builds an archive without SMTP: every message through the blob store and the ledger, as the
 * receiver does, then `spindle rebuild`'s indexing. Puts run `concurrency` at a time so that the
 * store and the ledger group-commit, as under SMTP load.
 */
export async function seedArchive(
  dataDir: string,
  messages: Iterable<SeedMessage> | AsyncIterable<SeedMessage>,
  opts: { concurrency?: number; env?: Record<string, string>; onStored?: (n: number) => void } = {},
): Promise<{ stored: number }> {
  const store = createFsBlobStore({ dir: path.join(dataDir, 'blobs'), recentCacheBytes: 0 });
  const ledger = await openLedger({ dir: path.join(dataDir, 'ledger'), log: silentLog() });
  const inFlight = new Set<Promise<void>>();
  let stored = 0;
  let failure: unknown = null;
  const one = async (m: SeedMessage) => {
    const raw = typeof m.raw === 'string' ? Buffer.from(m.raw, 'utf8') : m.raw;
    const put = await store.put((async function* () {
      yield raw;
    })());
    await ledger.append({
      type: 'delivery', blob: put.sha256, size: put.size, stored: put.storedSize,
      env: { mailFrom: m.mailFrom ?? '', rcpts: (m.rcpts ?? ['archive@localhost']).map((address) => ({ address })), client: '127.0.0.1', helo: 'seed.test', session: 'seed', tls: false },
    });
    opts.onStored?.(++stored);
  };
  try {
    for await (const m of messages) {
      if (failure) break;
      const p: Promise<void> = one(m).catch((err: unknown) => {
        failure ??= err;
      }).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= (opts.concurrency ?? 32)) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (failure) throw failure;
  } finally {
    await ledger.close();
    await store.close();
  }
  await rebuildDatabase(testConfig(opts.env ?? {}, dataDir), silentLog());
  return { stored };
}
