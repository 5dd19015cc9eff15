import fs from 'node:fs';
import path from 'node:path';
import { SETTINGS, type Config, type SettingSpec } from './settings.js';

export class ConfigError extends Error {
  readonly code = 'bad_config';
}

export type SettingSource = 'default' | 'file' | 'env' | 'flag';

export interface LoadedConfig {
  config: Config;
  sources: Record<keyof Config, SettingSource>;
  file: string | null;
}

export interface LoadOptions {
  /** Path from --config; falls back to SPINDLE_CONFIG. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** CLI flag values by setting key, as strings. */
  flags?: Partial<Record<keyof Config, string>>;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1000, kb: 1000, m: 1000 ** 2, mb: 1000 ** 2, g: 1000 ** 3, gb: 1000 ** 3,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

function parseValue(spec: SettingSpec, raw: string, origin: string): string | number | boolean | string[] {
  const fail = (why: string): never => {
    throw new ConfigError(`${spec.env} (${origin}): ${why}, got ${JSON.stringify(raw)}`);
  };
  const value = raw.trim();
  switch (spec.type) {
    case 'string':
      return value;
    case 'port': {
      if (!/^\d+$/.test(value)) fail('expected a port number 0-65535');
      const n = Number(value);
      if (n > 65535) fail('expected a port number 0-65535');
      return n;
    }
    case 'int': {
      if (!/^\d+$/.test(value)) fail('expected a whole number');
      return Number(value);
    }
    case 'bytes': {
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
      const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
      if (!m || unit === undefined) fail('expected a size like 50MB, 512KiB or 1000000');
      return Math.floor(Number(m![1]) * unit!);
    }
    case 'list':
      return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(value)) return true;
      if (/^(0|false|no|off|)$/i.test(value)) return false;
      return fail('expected true or false');
    case 'enum': {
      const v = value.toLowerCase();
      if (!spec.choices?.includes(v)) fail(`expected one of ${spec.choices?.map((c) => c || '(empty)').join(', ')}`);
      return v;
    }
  }
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${file} must hold a JSON object of settings`);
  }
  return data as Record<string, unknown>;
}

/** Defaults < config file < environment < CLI flags. The file takes setting keys or env names. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.SPINDLE_CONFIG || undefined) ?? null;
  const fromFile = file ? readFile(file) : {};
  const known = new Set(SETTINGS.flatMap((s) => [s.key as string, s.env]));
  for (const k of Object.keys(fromFile)) {
    if (!known.has(k)) throw new ConfigError(`config file ${file}: unknown setting ${JSON.stringify(k)}`);
  }
  const config = {} as Record<keyof Config, unknown>;
  const sources = {} as Record<keyof Config, SettingSource>;
  for (const spec of SETTINGS) {
    let raw = spec.default;
    let source: SettingSource = 'default';
    const fileValue = fromFile[spec.key] ?? fromFile[spec.env];
    if (fileValue !== undefined) {
      raw = Array.isArray(fileValue) ? fileValue.join(',') : String(fileValue);
      source = 'file';
    }
    const envValue = env[spec.env];
    if (envValue !== undefined && envValue !== '') {
      raw = envValue;
      source = 'env';
    }
    const flagValue = opts.flags?.[spec.key];
    if (flagValue !== undefined) {
      raw = flagValue;
      source = 'flag';
    }
    config[spec.key] = parseValue(spec, raw, source);
    sources[spec.key] = source;
  }
  const result = config as unknown as Config;
  result.dataDir = path.resolve(result.dataDir);
  if (result.archiveAddresses.length === 0) throw new ConfigError('SPINDLE_ARCHIVE_ADDRESSES: at least one archive address is required');
  if (Boolean(result.smtpTlsCert) !== Boolean(result.smtpTlsKey)) {
    throw new ConfigError('SPINDLE_SMTP_TLS_CERT and SPINDLE_SMTP_TLS_KEY must be set together');
  }
  if (Boolean(result.restoreImapUser) !== Boolean(result.restoreImapPassword)) {
    throw new ConfigError('SPINDLE_RESTORE_IMAP_USER and SPINDLE_RESTORE_IMAP_PASSWORD must be set together');
  }
  if (!result.restoreMasterSeparator) throw new ConfigError('SPINDLE_RESTORE_MASTER_SEPARATOR: must not be empty');
  if (result.purgeTime && !/^([01]\d|2[0-3]):[0-5]\d$/.test(result.purgeTime)) throw new ConfigError('SPINDLE_PURGE_TIME: expected HH:MM (24-hour), or empty for no scheduled purge');
  if (result.maxMessageBytes < 1024) throw new ConfigError('SPINDLE_MAX_MESSAGE_SIZE: must be at least 1KiB');
  return { config: result, sources, file };
}

/** `spindle config`: the effective configuration, one commented line per setting. */
export function formatConfig(loaded: LoadedConfig): string {
  const lines = [`# Effective Spindle configuration${loaded.file ? ` (config file: ${loaded.file})` : ''}`];
  for (const spec of SETTINGS) {
    const value = loaded.config[spec.key];
    const shown = spec.secret && value ? '***' : Array.isArray(value) ? value.join(',') : String(value);
    lines.push('', `# ${spec.description}`, `# default: ${spec.default || '(empty)'}; from: ${loaded.sources[spec.key]}`,
      `${spec.env}=${shown}`);
  }
  return lines.join('\n') + '\n';
}

/** The configuration reference table in README.md, generated from SETTINGS (a test keeps them equal). */
export function settingsMarkdown(): string {
  const rows = SETTINGS.map((s) => `| \`${s.env}\` | \`${s.default || '(empty)'}\` | ${s.description}${s.choices ? ` One of: ${s.choices.map((c) => `\`${c || '(empty)'}\``).join(', ')}.` : ''} |`);
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}
