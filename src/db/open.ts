/**
 * Opens the database boocoder runs on: PostgreSQL when a URL is configured (several processes may
 * share it), else the embedded PostgreSQL boocoder runs itself (embedded-postgres.ts). PGlite
 * remains only to carry an old PGlite home over (pglite-carry-over.ts, docs/database.md).
 */
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { createPgDb } from './pg.js';
import { carryOverPgliteHome } from './pglite-carry-over.js';

export interface OpenDatabaseOptions {
  databaseUrl?: string;
  home: string;
  logger: Logger;
  /** The embedded PostgreSQL's folder (BOOCODER_PG_DIR); see embedded-postgres.ts for the default. */
  pgDir?: string;
  /** The user the embedded PostgreSQL runs as when boocoder is root (BOOCODER_PG_USER). */
  pgUser?: string;
  /** The schema of boocoder's tables (BOOCODER_DB_SCHEMA; DEFAULT_SCHEMA unless given). */
  schema?: string;
}

/** Where boocoder versions before the embedded PostgreSQL kept their PGlite database. */
export function embeddedDataDir(home: string): string {
  return join(home, 'data');
}

async function openPostgres(
  connectionString: string,
  schema: string | undefined,
  logger: Logger,
  onClose?: () => Promise<void>,
): Promise<Db> {
  const db = createPgDb({ connectionString, schema, logger });
  try {
    // Fail at start-up, with a clear message, rather than on the first request.
    await db.query('SELECT 1');
  } catch (err) {
    await db.close();
    await onClose?.();
    throw err;
  }
  if (!onClose) return db;
  // The embedded server stops after the last pooled connection is closed, so the pool's goodbye
  // is not answered by a shutting-down server.
  return {
    ...db,
    kind: db.kind,
    async close() {
      await db.close();
      await onClose();
    },
  };
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Db> {
  const { databaseUrl, logger } = options;
  if (databaseUrl) {
    const db = await openPostgres(databaseUrl, options.schema, logger);
    logger.info('using PostgreSQL');
    return db;
  }
  const embedded = await startEmbeddedPostgres({
    home: options.home,
    logger,
    pgDir: options.pgDir,
    runAsUser: options.pgUser,
  });
  const db = await openPostgres(embedded.connectionString, options.schema, logger, () => embedded.stop());
  try {
    await carryOverPgliteHome(options.home, db, logger);
  } catch (err) {
    await db.close();
    throw err;
  }
  logger.info('using the embedded PostgreSQL', { owner: embedded.owner });
  return db;
}
