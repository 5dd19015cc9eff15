import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Db = Database.Database;

/** migrations/ sits two levels above this file both in src/db (tsx) and dist/db (built). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface OpenOptions {
  file: string;
  readonly?: boolean;
  migrationsDir?: string;
}

/**
 * Opens spindle.db in WAL mode and applies pending migrations. synchronous=NORMAL is enough:
 * the database is a cache of the ledger and the blobs, which carry the durability guarantee.
 */
export function openDatabase(opts: OpenOptions): Db {
  if (!opts.readonly) fs.mkdirSync(path.dirname(opts.file), { recursive: true });
  const db = new Database(opts.file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, opts.migrationsDir ?? MIGRATIONS_DIR);
  }
  db.pragma('cache_size = -65536');
  return db;
}

/** Applies numbered migrations (NNN_name.sql) in order, each in its own transaction, recorded. */
export function migrate(db: Db, dir: string): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version),
  );
  const files = fs
    .readdirSync(dir)
    .map((name) => /^(\d+)_([\w-]+)\.sql$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  const done: string[] = [];
  for (const m of files) {
    const version = Number(m[1]);
    if (applied.has(version)) continue;
    const sql = fs.readFileSync(path.join(dir, m[0]), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(version, m[2], new Date().toISOString());
    })();
    done.push(m[0]);
  }
  return done;
}
