/**
 * Original bytes of the most recently stored blobs, bounded by total size. The indexer parses a
 * message milliseconds after it was stored; this saves reading and decompressing it again.
 */
export interface RecentCache {
  set(key: string, value: Buffer): void;
  get(key: string): Buffer | undefined;
  delete(key: string): void;
}

export function createRecentCache(maxBytes: number): RecentCache {
  const entries = new Map<string, Buffer>();
  let total = 0;
  const remove = (key: string): void => {
    const v = entries.get(key);
    if (v) {
      total -= v.length;
      entries.delete(key);
    }
  };
  return {
    set(key, value) {
      if (value.length > maxBytes / 4) return;
      remove(key);
      entries.set(key, value);
      total += value.length;
      // Map iteration order is insertion order: the first key is the oldest.
      for (const oldest of entries.keys()) {
        if (total <= maxBytes) break;
        remove(oldest);
      }
    },
    get: (key) => entries.get(key),
    delete: remove,
  };
}
