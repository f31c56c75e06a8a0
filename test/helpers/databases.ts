/**
 * Fresh databases for integration tests, on both backends.
 *
 *   describeEachDatabase('tasks', (ctx) => { it('...', async () => { await ctx.db.query(...) }) });
 *
 * runs the suite once on the embedded PostgreSQL (the default a user without DATABASE_URL gets;
 * one cluster per vitest run, started by global-setup.ts) and once on the system PostgreSQL, each
 * with its own migrated database for the file: a clone of the cluster's migrated TEMPLATE database
 * (created once per migration set, guarded by an advisory lock against concurrent vitest workers),
 * dropped afterwards.
 *
 * PostgreSQL is found at TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres. When it
 * is unreachable: with CI or BOOCODER_REQUIRE_PG=1 set, loading this module throws; otherwise the
 * pg half is skipped with a loud warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { DEFAULT_SCHEMA } from '../../src/db/adapter-common.js';
import type { Db } from '../../src/db/db.js';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { createPgDb } from '../../src/db/pg.js';
import { silentLogger } from '../../src/log.js';

export type BackendName = 'embedded' | 'pg';

export interface TestDatabase {
  backend: BackendName;
  db: Db;
  /** pg only: for opening more connections to the same database. */
  connectionString?: string;
  /** Closes db and, on pg, drops the database. */
  close(): Promise<void>;
}

export interface DatabaseBackend {
  name: BackendName;
  /** A new database of its own; migrated unless `migrated: false`. */
  create(options?: { migrated?: boolean }): Promise<TestDatabase>;
}

export interface DatabaseTestContext {
  readonly backend: BackendName;
  /** The suite's database (available from beforeAll on). */
  readonly db: Db;
  readonly connectionString: string | undefined;
}

export const ADMIN_DATABASE_URL =
  process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const requirePg = Boolean(process.env.CI) || process.env.BOOCODER_REQUIRE_PG === '1';
// Template creation is serialised across vitest workers (and concurrent runs) by this key.
const TEMPLATE_LOCK_KEY = 7_311_000_002;

/** The embedded PostgreSQL cluster global-setup.ts started for this run. */
function embeddedAdminUrl(): string {
  const url = process.env.BOOCODER_TEST_EMBEDDED_URL;
  if (!url)
    throw new Error('no embedded PostgreSQL: test/helpers/global-setup.ts starts it (run through vitest)');
  return url;
}

function databaseUrl(name: string, adminUrl = ADMIN_DATABASE_URL): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  // Raw pg clients in tests see boocoder's tables unqualified, as boocoder's own connections do.
  url.searchParams.set('options', `-c search_path=${DEFAULT_SCHEMA}`);
  return url.toString();
}

function quoteIdent(name: string): string {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unexpected database name ${name}`);
  return `"${name}"`;
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>, adminUrl = ADMIN_DATABASE_URL): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  admin.on('error', () => {});
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

async function probePostgres(): Promise<string | undefined> {
  try {
    await withAdmin((admin) => admin.query('SELECT 1'));
    return undefined;
  } catch (err) {
    return err instanceof Error
      ? `${(err as { code?: string }).code ?? ''} ${err.message}`.trim()
      : String(err);
  }
}

const pgProblem = await probePostgres();
if (pgProblem !== undefined) {
  const where = process.env.TEST_DATABASE_URL ? 'TEST_DATABASE_URL' : 'postgres://postgres@127.0.0.1:5432';
  if (requirePg) {
    throw new Error(
      `PostgreSQL is required (CI or BOOCODER_REQUIRE_PG=1) but unreachable at ${where}: ${pgProblem}`,
    );
  }
  console.warn(
    `\n*** PostgreSQL half SKIPPED: cannot reach ${where} (${pgProblem}). Only PGlite is tested. ***\n`,
  );
}

/** The template's name changes with the migrations (and the migrator), so an edited schema never reuses a stale one. */
function templateName(): string {
  const hash = createHash('sha256');
  const dir = defaultMigrationsDir();
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  hash.update(readFileSync(new URL('../../src/db/migrate.ts', import.meta.url)));
  hash.update(readFileSync(new URL('../../src/db/schema-move.ts', import.meta.url)));
  return `boocoder_tpl_${hash.digest('hex').slice(0, 16)}`;
}

/** Per cluster (admin URL): the system PostgreSQL and the embedded one each get their template. */
const templatesReady = new Map<string, Promise<string>>();

function ensureTemplate(adminUrl: string): Promise<string> {
  const known = templatesReady.get(adminUrl);
  if (known) return known;
  const ready = withAdmin(async (admin) => {
    const template = templateName();
    await admin.query('SELECT pg_advisory_lock($1::bigint)', [TEMPLATE_LOCK_KEY]);
    try {
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
      if (found.rowCount) return template;
      // Built under another name and renamed when complete: a crash mid-build leaves no half-migrated template.
      const building = `${template}_b${process.pid}`;
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(building)}`);
      await admin.query(`CREATE DATABASE ${quoteIdent(building)} TEMPLATE template0`);
      const db = createPgDb({ connectionString: databaseUrl(building, adminUrl), logger: silentLogger });
      try {
        await migrate(db, { logger: silentLogger });
      } finally {
        await db.close();
      }
      await retryWhileInUse(() =>
        admin.query(`ALTER DATABASE ${quoteIdent(building)} RENAME TO ${quoteIdent(template)}`),
      );
      return template;
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1::bigint)', [TEMPLATE_LOCK_KEY]);
    }
  }, adminUrl);
  templatesReady.set(adminUrl, ready);
  return ready;
}

/** A just-closed connection's backend may still be exiting; CREATE/ALTER DATABASE then fail with 55006. */
async function retryWhileInUse<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A database of its own per call, cloned from the cluster's migrated template, dropped on close. */
function clusterBackend(backend: BackendName, adminUrl: () => string): DatabaseBackend {
  return {
    name: backend,
    async create(options) {
      const admin = adminUrl();
      const name = `boocoder_t_${process.pid}_${randomBytes(6).toString('hex')}`;
      const source = options?.migrated === false ? 'template0' : await ensureTemplate(admin);
      await withAdmin(
        (client) =>
          retryWhileInUse(() =>
            client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(source)}`),
          ),
        admin,
      );
      const connectionString = databaseUrl(name, admin);
      const db = createPgDb({ connectionString, logger: silentLogger });
      return {
        backend,
        db,
        connectionString,
        async close() {
          await db.close();
          await withAdmin(
            (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`),
            admin,
          );
        },
      };
    },
  };
}

const pgBackend = clusterBackend('pg', () => ADMIN_DATABASE_URL);
/** The embedded default (what a user without DATABASE_URL runs on): one cluster per vitest run. */
const embeddedBackend = clusterBackend('embedded', embeddedAdminUrl);

/** The backends to run on: the embedded PostgreSQL always, pg when PostgreSQL is reachable. */
export function databaseBackends(): DatabaseBackend[] {
  return pgProblem === undefined ? [embeddedBackend, pgBackend] : [embeddedBackend];
}

export function isPostgresAvailable(): boolean {
  return pgProblem === undefined;
}

/** Registers the suite once per backend, each with its own migrated database, dropped afterwards. */
export function describeEachDatabase(name: string, fn: (ctx: DatabaseTestContext) => void): void {
  for (const backend of [embeddedBackend, pgBackend]) {
    let testDb: TestDatabase | undefined;
    const ctx: DatabaseTestContext = {
      backend: backend.name,
      get db() {
        if (!testDb) throw new Error('the test database is not open yet (use it inside tests or hooks)');
        return testDb.db;
      },
      get connectionString() {
        return testDb?.connectionString;
      },
    };
    if (backend.name === 'pg' && pgProblem !== undefined) {
      describe.skip(`${name} [pg: SKIPPED, PostgreSQL unreachable]`, () => fn(ctx));
      continue;
    }
    describe(`${name} [${backend.name}]`, () => {
      beforeAll(async () => {
        testDb = await backend.create();
      }, 60_000);
      afterAll(async () => {
        await testDb?.close();
        testDb = undefined;
      });
      fn(ctx);
    });
  }
}
