import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';

export function tempDir(prefix = 'spindle-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const silentLog = () => pino({ level: 'silent' });
