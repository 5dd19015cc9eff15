import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** URL of a sibling module of this one (`name` without extension), .ts under tsx/vitest, .js when built. */
export function siblingModuleUrl(name: string): URL {
  const here = new URL(import.meta.url);
  here.search = '';
  here.hash = '';
  const m = /\.(m?[jt]s)$/.exec(here.pathname);
  return new URL(`./${name}.${m ? m[1] : 'js'}`, here);
}

/**
 * Starts a worker thread on a module of src/ingest. Compiled JS: the file directly. TypeScript
 * source (vitest, tsx): `execArgv: ['--import', 'tsx']` does not work for workers on Node 20 (the
 * worker is loaded without the hooks: ERR_UNKNOWN_FILE_EXTENSION, see nodejs/node#47747), so a
 * tiny eval'd bootstrap registers tsx's ESM hooks inside the worker (tsx/esm/api register()) and
 * then imports the .ts module.
 */
export function startModuleWorker(name: string, options: WorkerOptions = {}): Worker {
  const url = siblingModuleUrl(name);
  if (!url.pathname.endsWith('ts')) return new Worker(url, options);
  const tsxApi = tsxEsmApiUrl();
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((m) => (m.register || m.default.register)())` +
    `.then(() => import(${JSON.stringify(url.href)}))` +
    `.catch((err) => { setImmediate(() => { throw err; }); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** URL of tsx's ESM API entry (the `import` condition of `tsx/esm/api`), found via its package.json. */
function tsxEsmApiUrl(): string {
  const req = createRequire(import.meta.url);
  const pkgPath = req.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports?: Record<string, unknown> };
  const entry = pkg.exports?.['./esm/api'] as { import?: string | { default?: string } } | undefined;
  const rel = typeof entry?.import === 'string' ? entry.import : (entry?.import?.default ?? './dist/esm/api/index.mjs');
  return pathToFileURL(join(dirname(pkgPath), rel)).href;
}
