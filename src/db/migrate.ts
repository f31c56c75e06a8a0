/**
 * Schema migrations: `sql/NNNN_name.sql`, applied in order, each in its own transaction and
 * recorded in boocoder_migrations with a sha256 checksum. Everything lives in the Db's schema
 * (`boocoder`; the connection's search_path): the first migrate creates it and moves an install
 * from before it (tables in `public`) there (schema-move.ts).
 *
 * Several processes may start against one database at once, so every migration transaction first
 * takes pg_advisory_xact_lock(MIGRATION_LOCK_KEY) and only then re-reads what is applied: the
 * processes serialise and each migration runs exactly once. PGlite has the same advisory locks.
 * A migration file must not contain BEGIN/COMMIT of its own.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Db, Queryable } from './db.js';
import { moveLegacyInstall } from './schema-move.js';

/** Arbitrary, fixed: "boocoder migrations". Every boocoder process must use the same key. */
export const MIGRATION_LOCK_KEY = 7_311_000_001;

const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  /** The directory of NNNN_name.sql files; defaults to the package's own sql/. */
  dir?: string;
  logger: Logger;
}

export interface MigrateResult {
  /** File names applied by this call, in order. */
  applied: string[];
  /** The highest applied version afterwards (0 for none). */
  current: number;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/** The package's sql/ directory: the nearest ancestor of this module with package.json and sql/. */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'sql'))) return join(dir, 'sql');
    const parent = dirname(dir);
    if (parent === dir) throw new BoocoderError('E_INTERNAL', 'cannot find the sql/ migrations directory');
    dir = parent;
  }
}

export function loadMigrations(dir: string): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_RE.exec(file);
    if (!match) throw new BoocoderError('E_INTERNAL', `migration file ${file} is not named NNNN_name.sql`);
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) {
      throw new BoocoderError('E_INTERNAL', `two migration files have version ${version}`);
    }
    const bytes = readFileSync(join(dir, file));
    migrations.push({
      version,
      name: match[2] ?? '',
      file,
      sql: bytes.toString('utf8'),
      checksum: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return migrations.sort((a, b) => a.version - b.version);
}

async function takeMigrationLock(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
}

async function readApplied(tx: Queryable): Promise<AppliedRow[]> {
  const { rows } = await tx.query<AppliedRow>(
    'SELECT version, name, checksum FROM boocoder_migrations ORDER BY version',
  );
  return rows;
}

function assertCompatible(applied: AppliedRow[], known: Migration[]): void {
  const byVersion = new Map(known.map((m) => [m.version, m]));
  const maxKnown = known.reduce((max, m) => Math.max(max, m.version), 0);
  for (const row of applied) {
    const migration = byVersion.get(row.version);
    if (!migration) {
      const maxApplied = applied.reduce((max, r) => Math.max(max, r.version), 0);
      throw new BoocoderError(
        'E_DATABASE_NEWER',
        `the database schema is at version ${maxApplied}, but this boocoder only knows up to version ${maxKnown}; upgrade boocoder or use another database`,
        { databaseVersion: maxApplied, knownVersion: maxKnown },
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new BoocoderError(
        'E_MIGRATION_CHECKSUM',
        `migration ${migration.file} was changed after it was applied to this database; restore it (applied migrations are never edited: add a new one)`,
        { version: row.version },
      );
    }
  }
}

export async function migrate(db: Db, options: MigrateOptions): Promise<MigrateResult> {
  const { logger } = options;
  const migrations = loadMigrations(options.dir ?? defaultMigrationsDir());
  const alreadyApplied = await db.transaction(async (tx) => {
    // Under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still collide on pg_type.
    await takeMigrationLock(tx);
    // db.schema passed assertSchemaName when the handle was made: an identifier, safe in DDL.
    // Created only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
    // database even when the schema exists, which an app role given only its schema may lack.
    const existing = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [db.schema]);
    if (existing.rows.length === 0) await tx.query(`CREATE SCHEMA ${db.schema}`);
    if (await moveLegacyInstall(tx, db.schema, migrations)) {
      logger.info('moved boocoder tables from schema public to their own schema', { schema: db.schema });
    }
    await tx.query(
      `CREATE TABLE IF NOT EXISTS boocoder_migrations (
         version INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         checksum TEXT NOT NULL,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const rows = await readApplied(tx);
    assertCompatible(rows, migrations);
    return new Set(rows.map((r) => r.version));
  });

  const applied: string[] = [];
  for (const migration of migrations) {
    if (alreadyApplied.has(migration.version)) continue;
    const ranHere = await db.transaction(async (tx) => {
      // Another process may have applied it while we waited for the lock.
      await takeMigrationLock(tx);
      const rows = await readApplied(tx);
      assertCompatible(rows, migrations);
      if (rows.some((r) => r.version === migration.version)) return false;
      await tx.query(migration.sql);
      await tx.query('INSERT INTO boocoder_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    if (ranHere) {
      applied.push(migration.file);
      logger.info('applied migration', { migration: migration.file });
    }
  }
  const { rows } = await db.query<{ current: number }>(
    'SELECT COALESCE(MAX(version), 0)::int AS current FROM boocoder_migrations',
  );
  return { applied, current: rows[0]?.current ?? 0 };
}
