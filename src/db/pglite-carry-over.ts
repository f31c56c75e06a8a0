/**
 * Carries a home from before the embedded PostgreSQL (a PGlite database in `$BOOCODER_HOME/data`)
 * over into the embedded PostgreSQL, once, at the first start of this version.
 *
 * The PGlite database is first migrated to this version's schema (in `public`, where it always
 * kept its tables), then every table is copied row for row into the new database in one
 * transaction, with the same ids; identity sequences continue after the copied rows. Only then is
 * `data/` renamed to `data.pglite-carried-over` (kept, never deleted): a failure anywhere leaves the
 * PGlite database as it was and the copy is tried again on the next start.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Db, Queryable } from './db.js';
import { migrate } from './migrate.js';

export const CARRIED_OVER_SUFFIX = '.pglite-carried-over';

interface TableColumns {
  table: string;
  columns: string[];
}

/** boocoder's tables in the target schema with their insertable (non-generated) columns. */
async function tablesOf(tx: Queryable, schema: string): Promise<TableColumns[]> {
  const { rows } = await tx.query<{ table: string; columns: string[] }>(
    `SELECT table_name AS table, array_agg(column_name::text ORDER BY ordinal_position) AS columns
     FROM information_schema.columns
     WHERE table_schema = $1 AND is_generated = 'NEVER' AND table_name <> 'boocoder_migrations'
       AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE')
     GROUP BY table_name ORDER BY table_name`,
    [schema],
  );
  return rows;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export async function carryOverPgliteHome(home: string, target: Db, logger: Logger): Promise<void> {
  const dataDir = join(home, 'data');
  if (!existsSync(join(dataDir, 'PG_VERSION'))) return;
  const started = Date.now();
  const { openPgliteDb } = await import('./pglite.js');
  const source = await openPgliteDb({ dataDir, logger, schema: 'public' });
  let copied = 0;
  try {
    await migrate(source, { logger });
    await migrate(target, { logger });
    await target.transaction(async (tx) => {
      const tables = await tablesOf(tx, target.schema);
      const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM projects');
      if ((rows[0]?.n ?? 0) > 0) {
        throw new BoocoderError(
          'E_EMBEDDED_DATABASE',
          'the home has both an old PGlite database (data/) and projects in the embedded PostgreSQL; move data/ aside to keep the PostgreSQL one, or remove pg/ to carry data/ over again',
        );
      }
      // Triggers off for the copy (foreign keys are triggers too): rows arrive in table order, not
      // dependency order, and a copied task must not be announced as new. Only as superuser,
      // which boocoder is on its embedded cluster.
      await tx.query(`SET LOCAL session_replication_role = replica`);
      for (const { table, columns } of tables) {
        const list = columns.map(quote).join(', ');
        // table and columns come from the catalog of boocoder's own schema, quoted.
        const data = await source.query<{ rows: string }>(
          `SELECT coalesce(json_agg(t)::text, '[]') AS rows FROM ${quote(table)} t`,
        );
        const result = await tx.query(
          `INSERT INTO ${quote(table)} (${list}) OVERRIDING SYSTEM VALUE
           SELECT ${list} FROM json_populate_recordset(NULL::${quote(table)}, $1::json)`,
          [data.rows[0]?.rows ?? '[]'],
        );
        copied += result.rowCount;
      }
      await restartIdentities(tx, target.schema);
    });
  } finally {
    await source.close();
  }
  renameSync(dataDir, `${dataDir}${CARRIED_OVER_SUFFIX}`);
  logger.info('carried the PGlite database over into the embedded PostgreSQL', {
    rows: copied,
    ms: Date.now() - started,
  });
}

/** Every identity column's sequence continues after the largest copied value. */
async function restartIdentities(tx: Queryable, schema: string): Promise<void> {
  const { rows } = await tx.query<{ table: string; column: string }>(
    `SELECT table_name AS table, column_name AS column FROM information_schema.columns
     WHERE table_schema = $1 AND is_identity = 'YES'`,
    [schema],
  );
  for (const { table, column } of rows) {
    await tx.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(${quote(column)}) FROM ${quote(table)}), 0) + 1, false)`,
      [`${quote(schema)}.${quote(table)}`, column],
    );
  }
}
