/**
 * pg_terminate_backend on the dispatcher's LISTEN connection: the listener reconnects and wakes the
 * dispatcher, so a task inserted while it was down (its NOTIFY went nowhere) is still claimed
 * without waiting for the fallback poll, which is set far beyond the test's waits here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { upsertProject } from '../../src/db/projects.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { insertNoopTasks, insertSessions } from '../helpers/chaos-tasks.js';
import { databaseBackends, isPostgresAvailable, type TestDatabase } from '../helpers/databases.js';

const LISTEN_BACKENDS = `SELECT pid FROM pg_stat_activity
  WHERE datname = current_database() AND application_name = 'boocoder-listen'`;

describe.skipIf(!isPostgresAvailable())('the LISTEN connection killed [pg]', () => {
  let testDb: TestDatabase;
  let dispatcherDb: Db;
  let dispatcher: Dispatcher;
  let project: string;
  let sessions: string[];

  beforeAll(async () => {
    const pg = databaseBackends().find((b) => b.name === 'pg');
    testDb = await (pg as NonNullable<typeof pg>).create();
    await testDb.db.query(CHAOS_CLAIMS_DDL);
    project = (await upsertProject(testDb.db, '/chaos/listen', 'listen')).id;
    sessions = await insertSessions(testDb.db, project, 3);
    // A 2 s reconnect delay makes "inserted while LISTEN was down" certain, not a race.
    dispatcherDb = createPgDb({
      connectionString: testDb.connectionString as string,
      logger: silentLogger,
      listen: { reconnectMinMs: 2000, reconnectMaxMs: 2000 },
    });
    dispatcher = new Dispatcher({
      db: dispatcherDb,
      logger: silentLogger,
      runTask: recordingRunner(dispatcherDb),
      concurrency: 2,
      pollMs: 600_000,
      leaseMs: 30_000,
      shutdownGraceMs: 5_000,
    });
    await dispatcher.start();
  });

  afterAll(async () => {
    await dispatcher?.stop();
    await dispatcherDb?.close();
    await testDb?.close();
  });

  const completed = async (label: string) => {
    const { rows } = await testDb.db.query<{ state: string }>('SELECT state FROM tasks WHERE input LIKE $1', [
      `${label} %`,
    ]);
    return rows.length > 0 && rows.every((r) => r.state === 'completed');
  };

  it('claims a task inserted while the connection was down, and keeps listening afterwards', async () => {
    await insertNoopTasks(testDb.db, project, sessions.slice(0, 1), 1, 'before');
    await waitFor('the task queued before the kill to be claimed through NOTIFY', () => completed('before'));

    const { rows: listeners } = await testDb.db.query<{ pid: number }>(LISTEN_BACKENDS);
    expect(listeners).toHaveLength(1);
    const killed = listeners[0]?.pid;
    await testDb.db.query('SELECT pg_terminate_backend($1)', [killed]);
    await waitFor('the LISTEN backend to be gone', async () => {
      const { rows } = await testDb.db.query<{ pid: number }>(LISTEN_BACKENDS);
      return rows.length === 0;
    });

    const listening = await testDb.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ pid: number }>(LISTEN_BACKENDS);
      await tx.query(
        `INSERT INTO tasks (project_id, session_id, input, agent, execution_path) VALUES ($1, $2, 'during 1', 'noop', 'acp')`,
        [project, sessions[1]],
      );
      return rows.length;
    });
    // The NOTIFY of that insert reached nobody.
    expect(listening).toBe(0);
    await waitFor('the task inserted while LISTEN was down to be claimed', () => completed('during'), 20_000);

    const { rows: after } = await testDb.db.query<{ pid: number }>(LISTEN_BACKENDS);
    expect(after).toHaveLength(1);
    expect(after[0]?.pid).not.toBe(killed);
    await insertNoopTasks(testDb.db, project, sessions.slice(2, 3), 1, 'after');
    await waitFor(
      'a task inserted after the reconnect to be claimed through NOTIFY',
      () => completed('after'),
      20_000,
    );

    const { rows: claims } = await testDb.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM chaos_claims',
    );
    expect(claims[0]?.n).toBe(3);
  });
});
