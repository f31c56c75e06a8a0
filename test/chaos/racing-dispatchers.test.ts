/**
 * 2 to 10 dispatchers racing over thousands of tasks on one database, with a flood of duplicate
 * and bogus notifications: every task is claimed exactly once (one attempt) and none is lost.
 * On PostgreSQL each dispatcher has its own connection pool, and one run spreads them over
 * several processes; on PGlite (one process by design) they share the embedded database.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TASKS_CANCEL_CHANNEL } from '../../src/db/channels.js';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { upsertProject } from '../../src/db/projects.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { silentLogger } from '../../src/log.js';
import {
  killProcess,
  type RunningProcess,
  startTsxScript,
  waitFor,
  waitForExit,
  waitForReady,
} from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { insertNoopTasks, insertSessions } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';

const DISPATCHER_FIXTURE = fileURLToPath(new URL('../fixtures/chaos-dispatcher.ts', import.meta.url));

describeEachDatabase('dispatchers racing on one database', (ctx) => {
  const dispatchers: Dispatcher[] = [];
  const pools: Db[] = [];
  const processes: RunningProcess[] = [];

  beforeEach(async () => {
    await ctx.db.query(CHAOS_CLAIMS_DDL);
    await ctx.db.query('DELETE FROM chaos_claims');
    await ctx.db.query('DELETE FROM tasks');
  });

  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await Promise.all(processes.splice(0).map((p) => killProcess(p)));
  });

  /** An in-process dispatcher: on pg with its own pool, on PGlite on the shared database. */
  async function startDispatcher(pollMs: number): Promise<void> {
    let db = ctx.db;
    if (ctx.connectionString) {
      db = createPgDb({ connectionString: ctx.connectionString, logger: silentLogger, poolMax: 3 });
      pools.push(db);
    }
    const d = new Dispatcher({
      db,
      logger: silentLogger,
      runTask: recordingRunner(db),
      concurrency: 4,
      pollMs,
      leaseMs: 30_000,
      shutdownGraceMs: 5_000,
    });
    dispatchers.push(d);
    await d.start();
  }

  async function startDispatcherProcess(): Promise<void> {
    const p = startTsxScript(DISPATCHER_FIXTURE, {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DATABASE_URL: ctx.connectionString as string,
      CHAOS_RUNNER: 'record',
      CHAOS_POLL_MS: '1000',
    });
    processes.push(p);
    await waitForReady(p);
  }

  /** Queues `total` tasks in batches while the dispatchers run, flooding the channels with noise. */
  async function raceOver(total: number, batches: number): Promise<void> {
    const db = ctx.db;
    const project = await upsertProject(db, `/chaos/race/${ctx.backend}`, 'race');
    // Fewer sessions than tasks: sessions run one task at a time, so dispatchers also collide there.
    const sessions = await insertSessions(db, project.id, Math.ceil(total / 8));
    for (let b = 0; b < batches; b++) {
      const size = Math.floor(total / batches) + (b < total % batches ? 1 : 0);
      await insertNoopTasks(db, project.id, sessions, size, `batch-${b}`);
      // Duplicate wake-ups and cancellations of tasks nobody runs: hints only, all harmless.
      for (let n = 0; n < 20; n++) {
        await db.query('SELECT pg_notify($1, $2)', ['tasks_new', String(n)]);
        await db.query('SELECT pg_notify($1, $2)', [
          TASKS_CANCEL_CHANNEL,
          '00000000-0000-4000-8000-000000000000',
        ]);
      }
    }
    await waitFor(
      `all ${total} tasks to complete`,
      async () => {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tasks WHERE state <> 'completed'`,
        );
        return rows[0]?.n === 0;
      },
      90_000,
    );
    const tasks = await db.query<{ n: number; max_attempts: number; min_attempts: number }>(
      'SELECT count(*)::int AS n, max(attempts) AS max_attempts, min(attempts) AS min_attempts FROM tasks',
    );
    expect(tasks.rows[0]).toEqual({ n: total, max_attempts: 1, min_attempts: 1 });
    const claims = await db.query<{ claims: number; distinct_tasks: number; overlapping: number }>(
      `SELECT count(*)::int AS claims, count(DISTINCT task_id)::int AS distinct_tasks,
              count(*) FILTER (WHERE overlapping)::int AS overlapping
         FROM chaos_claims`,
    );
    expect(claims.rows[0]).toEqual({ claims: total, distinct_tasks: total, overlapping: 0 });
  }

  // The embedded half is the same engine as the pg half: fewer tasks keep the suite short, same race.
  const many = (n: number) => (ctx.backend === 'embedded' ? n / 4 : n);

  it('two dispatchers: each task claimed exactly once (1,000 on pg)', async () => {
    for (let i = 0; i < 2; i++) await startDispatcher(1000);
    await raceOver(many(1000), 4);
    expect(dispatchers.every((d) => d.activeCount === 0)).toBe(true);
  });

  it('ten dispatchers: each task claimed exactly once (3,000 on pg), by several of them', async () => {
    for (let i = 0; i < 10; i++) await startDispatcher(1000);
    await raceOver(many(3000), 6);
    const { rows } = await ctx.db.query<{ owners: number }>(
      'SELECT count(DISTINCT owner)::int AS owners FROM chaos_claims',
    );
    expect(rows[0]?.owners).toBeGreaterThan(1);
  });

  // The same engine runs this on the pg half; three more processes on the embedded half only cost time.
  it.skipIf(ctx.backend === 'embedded')(
    'dispatchers in three processes and this one: each of 2,000 tasks claimed exactly once',
    async () => {
      await Promise.all([0, 1, 2].map(() => startDispatcherProcess()));
      for (let i = 0; i < 2; i++) await startDispatcher(1000);
      await raceOver(2000, 5);
      for (const p of processes) p.child.kill('SIGTERM');
      for (const p of processes) expect(await waitForExit(p, 20_000)).toEqual({ code: 0, signal: null });
      const { rows } = await ctx.db.query<{ owner: string }>('SELECT DISTINCT owner FROM chaos_claims');
      const pids = new Set(rows.map((r) => r.owner.split(':')[1]));
      expect(pids.size).toBeGreaterThan(1);
    },
  );
});
