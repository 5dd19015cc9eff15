import fs from 'node:fs';

/** package.json sits two levels above this file in src/runtime and dist/runtime alike. */
export const VERSION: string = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
