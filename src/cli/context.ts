import fs from 'node:fs';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/settings.js';
import { openDatabase, type Db } from '../db/database.js';
import { dataPaths } from '../runtime/paths.js';
import { CliError } from './errors.js';

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

export function loadCliConfig(opts: GlobalOptions, flags: Partial<Record<keyof Config, string>> = {}): LoadedConfig {
  try {
    return loadConfig({ file: opts.config, flags: { ...(opts.dataDir ? { dataDir: opts.dataDir } : {}), ...flags } });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** Opens the database of an existing archive; a missing archive is a clear error, not an empty one. */
export function openArchiveDb(config: Config): Db {
  const paths = dataPaths(config.dataDir);
  if (!fs.existsSync(paths.db)) {
    throw new CliError(`no archive database at ${paths.db} (start the server with \`spindle serve\`, or point --data-dir / SPINDLE_DATA_DIR at your archive)`);
  }
  return openDatabase({ file: paths.db });
}
