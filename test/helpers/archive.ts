import path from 'node:path';
import { silentLog, tempDir } from './tmp.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/settings.js';
import { startArchiver, type RunningArchiver } from '../../src/runtime/archiver.js';
import { openDatabase } from '../../src/db/database.js';
import { createTokenStore, type Role } from '../../src/db/tokens.js';

export { tempDir, silentLog } from './tmp.js';

/** A configuration for tests: temp data dir, ports picked by the OS, quiet logs. */
export function testConfig(overrides: Record<string, string> = {}, dataDir = tempDir()): Config {
  return loadConfig({
    env: {
      SPINDLE_DATA_DIR: dataDir,
      SPINDLE_SMTP_PORT: '0',
      SPINDLE_HTTP_PORT: '0',
      SPINDLE_LOG_LEVEL: 'silent',
      SPINDLE_PARSE_WORKERS: '1',
      ...overrides,
    },
  }).config;
}


export interface TestArchive extends RunningArchiver {
  config: Config;
  token(role?: Role): string;
  api<T = unknown>(pathAndQuery: string, role?: Role): Promise<{ status: number; body: T; headers: Headers; raw: Buffer }>;
}

export async function startTestArchive(overrides: Record<string, string> = {}, dataDir?: string): Promise<TestArchive> {
  const config = testConfig(overrides, dataDir);
  const archiver = await startArchiver(config, silentLog());
  const tokens = new Map<Role, string>();
  const token = (role: Role = 'auditor') => {
    let t = tokens.get(role);
    if (!t) {
      const db = openDatabase({ file: path.join(config.dataDir, 'spindle.db') });
      t = createTokenStore(db).create({ role, name: `test-${role}` }).token;
      db.close();
      tokens.set(role, t);
    }
    return t;
  };
  return {
    ...archiver,
    config,
    token,
    async api(pathAndQuery, role = 'auditor') {
      const res = await fetch(`http://127.0.0.1:${archiver.http.port}${pathAndQuery}`, { headers: { authorization: `Bearer ${token(role)}` } });
      const raw = Buffer.from(await res.arrayBuffer());
      const type = res.headers.get('content-type') ?? '';
      return { status: res.status, headers: res.headers, raw, body: (type.includes('json') ? JSON.parse(raw.toString('utf8')) : raw.toString('utf8')) as never };
    },
  };
}

/** A small RFC 5322 message with CRLF line endings. */
export function buildMessage(opts: {
  from?: string; to?: string[]; cc?: string[]; subject?: string; body?: string; messageId?: string | null;
  date?: string; extraHeaders?: string[];
}): string {
  const headers = [
    `From: ${opts.from ?? 'Alice Example <alice@example.com>'}`,
    `To: ${(opts.to ?? ['bob@example.com']).join(', ')}`,
    ...(opts.cc?.length ? [`Cc: ${opts.cc.join(', ')}`] : []),
    `Subject: ${opts.subject ?? 'Hello'}`,
    `Date: ${opts.date ?? 'Tue, 05 Mar 2024 10:00:00 +0000'}`,
    ...(opts.messageId === null ? [] : [`Message-ID: <${opts.messageId ?? `${Math.random().toString(36).slice(2)}@example.com`}>`]),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(opts.extraHeaders ?? []),
  ];
  return `${headers.join('\r\n')}\r\n\r\n${(opts.body ?? 'Hello there.').replace(/\r?\n/g, '\r\n')}\r\n`;
}
