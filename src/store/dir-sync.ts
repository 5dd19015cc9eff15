import fs from 'node:fs/promises';

/**
 * fsync of directories, shared between concurrent callers. A caller must wait for an fsync that
 * starts after its own rename, so requests arriving while one is in flight join the next one.
 * Under load this turns hundreds of directory fsyncs per second into a few.
 */
/** fsync of one directory, so that a rename or a new file in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function createDirSyncer(): (dir: string) => Promise<void> {
  const running = new Map<string, Promise<void>>();
  const queued = new Map<string, Promise<void>>();
  const syncNow = fsyncDir;

  function start(dir: string): Promise<void> {
    const p = syncNow(dir).finally(() => {
      if (running.get(dir) === p) running.delete(dir);
    });
    running.set(dir, p);
    return p;
  }

  return function syncDir(dir: string): Promise<void> {
    const waiting = queued.get(dir);
    if (waiting) return waiting;
    const current = running.get(dir);
    if (!current) return start(dir);
    const next = current
      .catch(() => undefined)
      .then(() => {
        queued.delete(dir);
        return start(dir);
      });
    queued.set(dir, next);
    return next;
  };
}
