/**
 * Leak detectors for databases: PGlite instances still open in this process (src/db/pglite.ts
 * lists them on a global symbol), and PostgreSQL test databases this process created
 * (test/helpers/databases.ts names them `boocoder_t_<pid>_...`) that were never dropped. An open
 * pg connection is caught by the handle detector (chaos-leak-handles.ts); a pool whose idle
 * clients already disconnected has no socket left, so its database is what gives it away.
 */
import type { Leak } from './chaos-leak-common.js';

/** The key src/db/pglite.ts registers open instances under. */
const OPEN_PGLITE_INSTANCES = Symbol.for('boocoder.pglite.openInstances');

interface Closable {
  close(): Promise<void>;
}

export function findOpenPglite(): Leak[] {
  const open = (globalThis as { [OPEN_PGLITE_INSTANCES]?: Map<Closable, string> })[OPEN_PGLITE_INSTANCES];
  return [...(open ?? [])].map(([db, dataDir]) => ({
    kind: 'PGlite database',
    description: `${dataDir === 'memory' ? 'an in-memory one' : dataDir} is still open`,
    release: () => db.close(),
  }));
}

/** The prefix test/helpers/databases.ts gives the databases it creates in process `pid`. */
export function testDatabasePrefix(pid = process.pid): string {
  return `boocoder_t_${pid}_`;
}

async function withAdminClient<T>(adminUrl: string, fn: (query: AdminQuery) => Promise<T>): Promise<T> {
  // Loaded only for files that talked to PostgreSQL: importing pg costs every other file time.
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return await fn((sql, params) => client.query(sql, params));
  } finally {
    await client.end().catch(() => {});
  }
}

type AdminQuery = (sql: string, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>;

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unexpected database name ${name}`);
  await withAdminClient(adminUrl, (query) => query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** Databases whose name starts with `prefix`. PostgreSQL unreachable (a chaos test stopped it): none. */
export async function findLeftoverPgDatabases(adminUrl: string, prefix: string): Promise<Leak[]> {
  let names: string[];
  try {
    names = await withAdminClient(adminUrl, async (query) => {
      const r = await query(
        'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname',
        [prefix],
      );
      return r.rows.map((row) => String(row.datname));
    });
  } catch {
    return [];
  }
  return names.map((name) => ({
    kind: 'PostgreSQL database',
    description: `${name} was never dropped`,
    release: () => dropDatabase(adminUrl, name),
  }));
}
