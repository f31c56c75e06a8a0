/**
 * Opens the database boocoder runs on: PostgreSQL when a URL is configured (several processes may
 * share it), else the embedded PGlite database under `${home}/data` (one process at a time).
 */
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Db } from './db.js';
import { createPgDb } from './pg.js';

export interface OpenDatabaseOptions {
  databaseUrl?: string;
  home: string;
  logger: Logger;
  /** Tests: an embedded database that lives in memory only and needs no lock. */
  inMemory?: boolean;
}

export function embeddedDataDir(home: string): string {
  return join(home, 'data');
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Db> {
  const { databaseUrl, logger } = options;
  if (databaseUrl) {
    const db = createPgDb({ connectionString: databaseUrl, logger });
    try {
      // Fail at start-up, with a clear message, rather than on the first request.
      await db.query('SELECT 1');
    } catch (err) {
      await db.close();
      throw err;
    }
    logger.info('using PostgreSQL');
    return db;
  }
  // Imported only when used: PGlite's WebAssembly build costs tens of MB of memory on PostgreSQL.
  const { IN_MEMORY, openPgliteDb } = await import('./pglite.js');
  const dataDir = options.inMemory ? IN_MEMORY : embeddedDataDir(options.home);
  const db = await openPgliteDb({ dataDir, logger });
  logger.info('using the embedded database', { inMemory: Boolean(options.inMemory) });
  return db;
}
