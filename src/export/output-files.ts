import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../store/dir-sync.js';
import type { ExportFormat } from './sinks.js';

/**
 * The files of a command-line export, written under `.partial` names and renamed into place only
 * when complete: the final name never holds half an export. The main output is renamed last, so
 * when it exists its manifests and `.sha256` are complete too. A failed or interrupted run
 * removes its partial files; a killed one leaves them, and the next run removes them first.
 */
export interface ExportFiles {
  /** The mbox or zip file, or the directory, being written. */
  main: string;
  /** manifest.csv / manifest.json beside an mbox; null for zip (inside) and dir (inside). */
  manifest: { csv: string; json: string } | null;
  /** Scratch space on the same file system (zip manifests and central directory). */
  tmpDir: string;
  /** Moves everything into place and writes `<out>.sha256`; returns the final paths. */
  commit(digest: string): Promise<string[]>;
  /** Removes every partial file. Never throws. */
  discard(): Promise<void>;
}

export class OutputError extends Error {}

const PARTIAL = '.partial';
const OURS = /^(.+\.eml|manifest\.(csv|json)|central-directory)$/;

/** Removes what an earlier, killed run left under our partial names; anything else is left alone. */
async function removeLeftover(p: string): Promise<void> {
  const st = await fsp.lstat(p).catch(() => null);
  if (!st) return;
  if (st.isDirectory()) {
    const foreign = (await fsp.readdir(p)).find((n) => !OURS.test(n));
    if (foreign !== undefined) throw new OutputError(`${p} holds ${foreign}, which is not from an export; move it away first`);
    await fsp.rm(p, { recursive: true, force: true });
  } else {
    await fsp.rm(p, { force: true });
  }
}

export async function prepareExportFiles(out: string, format: ExportFormat, force: boolean): Promise<ExportFiles> {
  const final = path.resolve(out);
  const parent = path.dirname(final);
  if (!fs.existsSync(parent)) throw new OutputError(`the directory ${parent} does not exist`);
  if (fs.existsSync(final) && !force) throw new OutputError(`${out} exists; choose another --out or add --force to replace it`);
  const sums = `${final}.sha256`;
  const manifests = format === 'mbox' ? { csv: `${final}.manifest.csv`, json: `${final}.manifest.json` } : null;
  const partial = (p: string) => `${p}${PARTIAL}`;
  const tmpDir = `${final}${PARTIAL}.d`;
  const allPartials = [partial(final), tmpDir, partial(sums), ...(manifests ? [partial(manifests.csv), partial(manifests.json)] : [])];
  for (const p of allPartials) await removeLeftover(p);
  await fsp.mkdir(tmpDir, { recursive: true });

  return {
    main: partial(final),
    manifest: manifests ? { csv: partial(manifests.csv), json: partial(manifests.json) } : null,
    tmpDir,
    async commit(digest) {
      await fsp.rm(tmpDir, { recursive: true, force: true });
      const listed = format === 'dir' ? `${path.basename(final)}/manifest.json` : path.basename(final);
      const handle = await fsp.open(partial(sums), 'w', 0o644);
      try {
        await handle.writeFile(`${digest}  ${listed}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const moves: Array<[string, string]> = [[partial(sums), sums]];
      if (manifests) moves.push([partial(manifests.csv), manifests.csv], [partial(manifests.json), manifests.json]);
      for (const [from, to] of moves) await fsp.rename(from, to);
      if (format === 'dir' && fs.existsSync(final)) {
        // rename() cannot replace a non-empty directory: move the old one aside, then delete it.
        const old = `${final}.replaced-${process.pid}`;
        await fsp.rename(final, old);
        await fsp.rename(partial(final), final);
        await fsp.rm(old, { recursive: true, force: true });
      } else {
        await fsp.rename(partial(final), final);
      }
      await fsyncDir(parent);
      return [final, ...(manifests ? [manifests.csv, manifests.json] : []), sums];
    },
    async discard() {
      await Promise.all(allPartials.map((p) => fsp.rm(p, { recursive: true, force: true }).catch(() => undefined)));
    },
  };
}
