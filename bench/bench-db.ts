/**
 * Databases for the benchmarks: a fresh PostgreSQL database per suite (created from template0,
 * migrated, dropped at the end) and embedded PostgreSQL clusters. Nothing is shared with the tests.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Db } from '../src/db/db.js';
import { migrate } from '../src/db/migrate.js';
import { openDatabase } from '../src/db/open.js';
import { createPgDb } from '../src/db/pg.js';
import { upsertProject } from '../src/db/projects.js';
import { silentLogger } from '../src/log.js';

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

function withDatabase(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Fails early, with the reason, when PostgreSQL is not reachable; returns its version string. */
export async function postgresVersion(adminUrl: string): Promise<string> {
  return withAdmin(adminUrl, async (c) => {
    const { rows } = await c.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v ?? 'unknown';
  });
}

/** A new, empty database with boocoder's schema migrated in (graphile-worker adds its own). */
export async function createBenchDatabase(adminUrl: string, purpose: string): Promise<BenchDatabase> {
  // Only [a-z0-9_] reaches the identifier: purpose is a constant from this folder, the rest is random.
  const name = `boocoder_bench_${purpose.replace(/[^a-z0-9]/g, '')}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}" TEMPLATE template0`));
  const url = withDatabase(adminUrl, name);
  const db = createPgDb({ connectionString: url, logger: silentLogger });
  try {
    await migrate(db, { logger: silentLogger });
  } finally {
    await db.close();
  }
  return {
    name,
    url,
    drop: () =>
      withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

/**
 * The embedded default (what boocoder runs on without DATABASE_URL) in a fresh home, with
 * boocoder's schema; closing it stops its PostgreSQL and removes the home.
 */
export async function openBenchEmbedded(): Promise<Db> {
  const root = mkdtempSync(join(tmpdir(), 'boocoder-bench-embedded-'));
  chmodSync(root, 0o755); // as root, postgres runs as `nobody`, who must reach pg/
  const db = await openDatabase({ home: join(root, 'home'), pgDir: join(root, 'pg'), logger: silentLogger });
  const close = async () => {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await migrate(db, { logger: silentLogger });
  } catch (err) {
    await close();
    throw err;
  }
  return { ...db, kind: db.kind, close };
}

export interface SeededSession {
  projectId: string;
  sessionId: string;
  chatId: string;
}

/** A project with one session and chat, for tasks that never touch git (no-op runners). */
export async function seedSession(db: Db, rootPath: string): Promise<SeededSession> {
  const project = await upsertProject(db, rootPath, 'bench');
  const { rows } = await db.query<{ session_id: string; chat_id: string }>(
    `WITH s AS (INSERT INTO sessions (project_id) VALUES ($1) RETURNING id)
     INSERT INTO chats (session_id) SELECT id FROM s RETURNING session_id, id AS chat_id`,
    [project.id],
  );
  const row = rows[0];
  if (!row) throw new Error('seeding a session returned no row');
  return { projectId: project.id, sessionId: row.session_id, chatId: row.chat_id };
}

/**
 * Queues `count` pending tasks, each in a session of its own (as `new_task` without session_id
 * does), in one statement. One session each keeps the one-running-task-per-session rule from
 * limiting concurrency. The notification this sends is coalesced by PostgreSQL into one.
 */
export async function queueManyTasks(db: Db, projectId: string, count: number): Promise<void> {
  await db.query(
    `WITH s AS (INSERT INTO sessions (project_id) SELECT $1 FROM generate_series(1, $2) RETURNING id),
          c AS (INSERT INTO chats (session_id) SELECT id FROM s RETURNING id, session_id)
     INSERT INTO tasks (project_id, session_id, chat_id, input, agent, max_attempts, execution_path)
     SELECT $1, c.session_id, c.id, 'no-op', 'bench', 3, 'acp' FROM c`,
    [projectId, count],
  );
}
