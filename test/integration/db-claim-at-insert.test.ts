/**
 * Claim at insert (src/dispatcher/slot-reservation.ts, insertTask with claimedBy) on both backends:
 * a task queued while the process's dispatcher has a free slot is inserted running, owned by it,
 * as its first attempt, without waking other dispatchers; it stays pending whenever a claim would
 * not take it now; racing inserts and racing dispatchers still run each task exactly once; and a
 * reservation open when the dispatcher stops hands its task back unspent.
 */
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TASKS_NEW_CHANNEL } from '../../src/db/channels.js';
import type { Db, Queryable } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { insertTask, type TaskClaim } from '../../src/db/task-inserts.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { handOverInserted, type SlotReservation } from '../../src/dispatcher/slot-reservation.js';
import type { TaskRunner } from '../../src/dispatcher/task-runner.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { insertSessionFor, queueAgentTask, readTask, type SessionIds } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';

const LEASE_MS = 30_000;

function insert(db: Queryable, ids: SessionIds, input: string, claimedBy?: TaskClaim) {
  return insertTask(db, {
    ...ids,
    input,
    agent: 'fixture',
    model: null,
    parentTaskId: null,
    maxAttempts: 3,
    claimedBy,
  });
}

/** A slot once the dispatcher is idle: none is lent while a claim statement may fill it. */
function freeSlot(d: Dispatcher): Promise<SlotReservation> {
  return waitFor('a free slot', () => d.reserveSlot(), 10_000);
}

describeEachDatabase('claim at insert', (ctx) => {
  const dispatchers: Dispatcher[] = [];
  const pools: Db[] = [];

  beforeEach(async () => {
    await ctx.db.query(CHAOS_CLAIMS_DDL);
    await ctx.db.query('DELETE FROM chaos_claims');
    await ctx.db.query('DELETE FROM tasks');
  });

  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  async function startDispatcher(runTask: TaskRunner, concurrency = 2, db = ctx.db): Promise<Dispatcher> {
    const d = new Dispatcher({
      db,
      logger: silentLogger,
      runTask,
      concurrency,
      pollMs: 500,
      leaseMs: LEASE_MS,
      shutdownGraceMs: 5_000,
    });
    dispatchers.push(d);
    await d.start();
    return d;
  }

  it('inserts the task as its first attempt, leased to the claimer, and wakes no dispatcher', async () => {
    const ids = await insertSessionFor(ctx.db, '/claim-at-insert/idle');
    const woken: string[] = [];
    const unlisten = await ctx.db.listen(TASKS_NEW_CHANNEL, (p) => woken.push(p));
    try {
      const task = await insert(ctx.db, ids, 'claimed', { owner: 'd1', leaseMs: LEASE_MS });
      expect(task).toMatchObject({ state: 'running', attempts: 1, leaseOwner: 'd1', endedAt: null });
      expect(task.startedAt).toBeInstanceOf(Date);
      expect((task.leaseExpiresAt as Date).getTime()).toBeGreaterThan((task.startedAt as Date).getTime());
      // Notifications arrive in commit order: had the claimed insert notified, it would come first.
      await insert(ctx.db, await insertSessionFor(ctx.db, '/claim-at-insert/other'), 'pending');
      await waitFor('the pending insert to notify', () => woken.length > 0, 10_000);
      expect(woken).toEqual(['']);
    } finally {
      await unlisten();
    }
  });

  it('inserts pending whenever a claim would not take the task now', async () => {
    const claim = { owner: 'd1', leaseMs: LEASE_MS };
    const busy = await insertSessionFor(ctx.db, '/claim-at-insert/busy');
    await insert(ctx.db, busy, 'busy-1', claim);
    // Its session has a running task: one task per session.
    expect(await insert(ctx.db, busy, 'busy-2', claim)).toMatchObject({ state: 'pending', attempts: 0 });
    // Blocked counts as active too.
    const blocked = await insertSessionFor(ctx.db, '/claim-at-insert/blocked');
    const parked = await insert(ctx.db, blocked, 'blocked-1', claim);
    await ctx.db.query(`UPDATE tasks SET state = 'blocked' WHERE id = $1`, [parked.id]);
    expect((await insert(ctx.db, blocked, 'blocked-2', claim)).state).toBe('pending');
    // An older claimable task waits elsewhere: the new one must not overtake it.
    const waiting = await insertSessionFor(ctx.db, '/claim-at-insert/waiting');
    const older = await queueAgentTask(ctx.db, waiting, 'older');
    const fresh = await insertSessionFor(ctx.db, '/claim-at-insert/fresh');
    expect(await insert(ctx.db, fresh, 'fresh', claim)).toMatchObject({ state: 'pending', leaseOwner: null });
    await ctx.db.query(`UPDATE tasks SET state = 'cancelled' WHERE id = $1`, [older]);
    // 'fresh' itself is claimable now, so the next one still queues behind it.
    const again = await insertSessionFor(ctx.db, '/claim-at-insert/again');
    expect((await insert(ctx.db, again, 'again-1', claim)).state).toBe('pending');
    await ctx.db.query(`UPDATE tasks SET state = 'cancelled' WHERE input IN ('fresh', 'again-1')`);
    // busy-2 and blocked-2 still wait, but only for their own sessions: nothing is overtaken.
    expect((await insert(ctx.db, again, 'again-2', claim)).state).toBe('running');
  });

  it('still claims at insert while many tasks wait behind a busy session', async () => {
    const claim = { owner: 'd1', leaseMs: LEASE_MS };
    const busy = await insertSessionFor(ctx.db, '/claim-at-insert/pile');
    await insert(ctx.db, busy, 'pile-running', claim);
    await ctx.db.query(
      `INSERT INTO tasks (project_id, session_id, input, agent)
       SELECT $1, $2, 'pile-' || g, 'fixture' FROM generate_series(1, 40) g`,
      [busy.projectId, busy.sessionId],
    );
    const other = await insertSessionFor(ctx.db, '/claim-at-insert/pile-other');
    expect((await insert(ctx.db, other, 'not behind them', claim)).state).toBe('running');
  });

  it('two inserts racing into one idle session: one claims, the other is queued, neither fails', async () => {
    const ids = await insertSessionFor(ctx.db, '/claim-at-insert/race');
    const a = new pg.Client({ connectionString: ctx.connectionString });
    const b = new pg.Client({ connectionString: ctx.connectionString });
    await a.connect();
    await b.connect();
    const on = (c: pg.Client): Queryable => ({
      query: async (sql, params) => {
        const r = await c.query(sql, params ? [...params] : []);
        return { rows: r.rows, rowCount: r.rowCount ?? 0 };
      },
    });
    try {
      await a.query('BEGIN');
      await b.query('BEGIN');
      const first = await insert(on(a), ids, 'first', { owner: 'd1', leaseMs: LEASE_MS });
      expect(first.state).toBe('running');
      // b sees no active task yet, claims too, and waits on the unique index for a's outcome.
      const second = insert(on(b), ids, 'second', { owner: 'd2', leaseMs: LEASE_MS });
      await a.query('COMMIT');
      expect(await second).toMatchObject({ state: 'pending', attempts: 0, leaseOwner: null });
      await b.query('COMMIT');
    } finally {
      await a.end();
      await b.end();
    }
    const { rows } = await ctx.db.query('SELECT input, state FROM tasks ORDER BY seq');
    expect(rows).toEqual([
      { input: 'first', state: 'running' },
      { input: 'second', state: 'pending' },
    ]);
  });

  it('a reserved slot counts as used until it settles; a task left pending is claimed the usual way', async () => {
    const runs: string[] = [];
    const d = await startDispatcher(async (task, run) => {
      runs.push(task.input);
      await run.finish({
        state: 'completed',
        outputSummary: null,
        costTokens: null,
        errorCode: null,
        lastError: null,
      });
    }, 1);
    const slot = await freeSlot(d);
    expect(slot).toBeDefined();
    expect(d.reserveSlot()).toBeUndefined();
    slot?.cancel();
    const busy = await insertSessionFor(ctx.db, '/claim-at-insert/slots');
    await ctx.db.query(
      `INSERT INTO tasks (project_id, session_id, input, state, lease_owner, lease_expires_at)
       VALUES ($1, $2, 'elsewhere', 'running', 'another', clock_timestamp() + interval '1 hour')`,
      [busy.projectId, busy.sessionId],
    );
    // The insert finds the session busy: the task is queued and the slot freed.
    const next = await freeSlot(d);
    const queued = await handOverInserted(
      next,
      insert(ctx.db, busy, 'queued', next?.claim).then((task) => ({ task })),
    );
    expect(queued.task.state).toBe('pending');
    await ctx.db.query(`UPDATE tasks SET state = 'completed', lease_owner = NULL WHERE input = 'elsewhere'`);
    await ctx.db.query(`SELECT pg_notify('tasks_new', '')`);
    await waitFor('the queued task to run', () => runs.includes('queued'), 10_000);
    // The runner records the run before its finish is committed: wait for the row, not the record.
    let task = await readTask(ctx.db, queued.task.id);
    for (let i = 0; i < 100 && task?.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      task = await readTask(ctx.db, queued.task.id);
    }
    expect(task).toMatchObject({ state: 'completed', attempts: 1 });
  });

  it('reserves no slot that a claim statement in flight may fill', async () => {
    const d = await startDispatcher(async () => {}, 1);
    // Holds the claim statement in flight: a table lock on pg, the one connection on PGlite.
    let unblock: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    let blocker: Promise<unknown>;
    let client: pg.Client | undefined;
    if (ctx.connectionString) {
      client = new pg.Client({ connectionString: ctx.connectionString });
      await client.connect();
      await client.query('BEGIN');
      await client.query('LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE');
      blocker = blocked.then(() => client?.query('COMMIT'));
    } else {
      let locked: () => void = () => {};
      const inside = new Promise<void>((resolve) => {
        locked = resolve;
      });
      blocker = ctx.db.transaction(async () => {
        locked();
        await blocked;
      });
      await inside;
    }
    try {
      d.wake();
      await new Promise((resolve) => setImmediate(resolve));
      const lent = d.reserveSlot();
      lent?.cancel();
      expect(lent).toBeUndefined();
    } finally {
      unblock();
      await blocker;
      await client?.end();
    }
    const slot = await waitFor('the claim to end', () => d.reserveSlot(), 10_000);
    slot.cancel();
  });

  it('two dispatchers inserting and claiming together: every task runs exactly once', async () => {
    const dbs = [ctx.db, ctx.db];
    if (ctx.connectionString) {
      for (let i = 0; i < 2; i++) {
        const db = createPgDb({ connectionString: ctx.connectionString, logger: silentLogger, poolMax: 3 });
        pools.push(db);
        dbs[i] = db;
      }
    }
    const pair = await Promise.all(dbs.map((db) => startDispatcher(recordingRunner(db), 2, db)));
    const sessions: SessionIds[] = [];
    for (let i = 0; i < 6; i++) sessions.push(await insertSessionFor(ctx.db, `/claim-at-insert/pair/${i}`));
    const waves = ctx.backend === 'embedded' ? 6 : 20;
    const total = 2 + waves * 10;
    // One each first, alone: both ways of starting a task are surely in the race below.
    for (const [i, d] of pair.entries()) {
      const slot = await freeSlot(d);
      const task = await insert(dbs[i] as Db, sessions[i] as SessionIds, `first-${i}`, slot?.claim);
      slot?.handOver(task);
      expect(task.state).toBe('running');
    }
    // Inserts in parallel waves, alternating dispatchers, over few sessions: some claim, some queue.
    for (let wave = 0; wave < waves; wave++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const d = pair[i % 2] as Dispatcher;
          const slot = d.reserveSlot();
          const ids = sessions[(wave + i + 2) % sessions.length] as SessionIds;
          const db = dbs[i % 2] as Db;
          return handOverInserted(
            slot,
            insert(db, ids, `w${wave}-${i}`, slot?.claim).then((task) => ({ task })),
          );
        }),
      );
    }
    await waitFor(
      `all ${total} tasks to complete`,
      async () => {
        const { rows } = await ctx.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tasks WHERE state = 'completed'`,
        );
        return rows[0]?.n === total;
      },
      60_000,
    );
    const { rows } = await ctx.db.query(
      `SELECT count(*)::int AS claims, count(DISTINCT task_id)::int AS tasks,
              count(*) FILTER (WHERE overlapping OR attempt <> 1)::int AS odd
         FROM chaos_claims`,
    );
    expect(rows[0]).toEqual({ claims: total, tasks: total, odd: 0 });
  });

  it('on stop, waits for an open reservation and hands its claimed task back unspent', async () => {
    const runs: string[] = [];
    const d = await startDispatcher(async (task) => {
      runs.push(task.input);
    });
    const ids = await insertSessionFor(ctx.db, '/claim-at-insert/stop');
    const slot = await freeSlot(d);
    let insertNow: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      insertNow = resolve;
    });
    const inserting = handOverInserted(
      slot,
      gate.then(() => insert(ctx.db, ids, 'late', slot?.claim)).then((task) => ({ task })),
    );
    let stopped = false;
    const stopping = d.stop().then(() => {
      stopped = true;
    });
    expect(d.reserveSlot()).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    insertNow();
    const { task } = await inserting;
    expect(task.state).toBe('running');
    await stopping;
    expect(runs).toEqual([]);
    expect(await readTask(ctx.db, task.id)).toMatchObject({
      state: 'pending',
      attempts: 0,
      lease_owner: null,
      lease_expires_at: null,
    });
  });
});
