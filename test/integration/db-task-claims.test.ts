/**
 * finishAndClaimTasks, the dispatcher's one statement per round trip, on both backends: FIFO by seq,
 * one active task per session (a finished task's session is free in the same statement), finishes
 * only while the lease is held, nothing claimed on shutdown, results recorded exactly; and the
 * Dispatcher's ctx.finish, which sends it.
 */
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TASKS_DONE_CHANNEL } from '../../src/db/channels.js';
import type { Db } from '../../src/db/db.js';
import { finishAndClaimTasks, type TaskFinish } from '../../src/db/task-claims.js';
import type { TaskOutcome } from '../../src/db/tasks.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import type { TaskRunner } from '../../src/dispatcher/task-runner.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { insertSessionFor, queueAgentTask, readTask, type SessionIds } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';

const LEASE_MS = 30_000;
const COMPLETED: TaskOutcome = {
  state: 'completed',
  outputSummary: null,
  costTokens: null,
  errorCode: null,
  lastError: null,
};

describeEachDatabase('finish-and-claim statements', (ctx) => {
  let sessions: SessionIds[];

  beforeEach(async () => {
    await ctx.db.query('DELETE FROM tasks');
    sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await insertSessionFor(ctx.db, `/claims/${i}`));
  });

  /** Queues one task per label, in order, each in the session its letter names (a, b, c). */
  async function queue(...labels: string[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const label of labels) {
      const session = sessions['abc'.indexOf(label[0] as string)] as SessionIds;
      ids.set(label, await queueAgentTask(ctx.db, session, label));
    }
    return ids;
  }

  const claim = (owner: string, freeSlots: number, finishes: TaskFinish[] = [], stopping = false) =>
    finishAndClaimTasks(ctx.db, owner, LEASE_MS, {
      finishes,
      claim: !stopping,
      freeSlots,
    });

  const inputs = (tasks: { input: string }[]) => tasks.map((t) => t.input);

  it('claims the oldest task of each session by seq, and none of a session with an active task', async () => {
    await queue('a1', 'b1', 'a2', 'c1', 'b2');
    const first = await claim('d1', 10);
    expect(inputs(first.tasks)).toEqual(['a1', 'b1', 'c1']);
    expect(first.tasks.every((t) => t.state === 'running' && t.attempts === 1 && t.leaseOwner === 'd1')).toBe(
      true,
    );
    expect(first.more).toBe(false);
    // Every session has its running task now: a2 and b2 wait, however many slots are free.
    expect((await claim('d2', 10)).tasks).toEqual([]);

    await ctx.db.query(`UPDATE tasks SET state = 'blocked' WHERE input = 'c1'`);
    await queue('c2');
    expect((await claim('d2', 10)).tasks).toEqual([]);
  });

  it('stops at the free slots and says when more may be claimable', async () => {
    await queue('a1', 'b1', 'c1');
    const two = await claim('d1', 2);
    expect(inputs(two.tasks)).toEqual(['a1', 'b1']);
    expect(two.more).toBe(true);
    const rest = await claim('d1', 2);
    expect(inputs(rest.tasks)).toEqual(['c1']);
    expect(rest.more).toBe(false);
  });

  it('finishing a task claims the next of its session in the same statement, keeping one per session', async () => {
    const ids = await queue('a1', 'a2', 'a3', 'b1');
    const first = await claim('d1', 1);
    expect(inputs(first.tasks)).toEqual(['a1']);

    const next = await claim('d1', 0, [{ id: ids.get('a1') as string, outcome: COMPLETED }]);
    expect(next.finished).toEqual([ids.get('a1')]);
    // The freed slot goes to the oldest claimable task: a2, now that a1 is over, ahead of b1.
    expect(inputs(next.tasks)).toEqual(['a2']);
    const { rows } = await ctx.db.query<{ input: string; state: string }>(
      `SELECT input, state FROM tasks WHERE input LIKE 'a%' ORDER BY seq`,
    );
    expect(rows).toEqual([
      { input: 'a1', state: 'completed' },
      { input: 'a2', state: 'running' },
      { input: 'a3', state: 'pending' },
    ]);
  });

  it('leaves a session alone while another claim holds its oldest task, so it never runs out of order', async () => {
    const ids = await queue('a1', 'a2', 'b1');
    // Another dispatcher's claim in flight: a1 locked, its transaction open (PGlite has one connection).
    const other = new pg.Client({ connectionString: ctx.connectionString });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT id FROM tasks WHERE id = $1 FOR UPDATE', [ids.get('a1')]);
      const meanwhile = await claim('d1', 3);
      expect(inputs(meanwhile.tasks)).toEqual(['b1']);
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
    expect(inputs((await claim('d1', 3)).tasks)).toEqual(['a1']);
  });

  it('finishes only what the owner holds, and a refused finish frees no slot', async () => {
    const ids = await queue('a1', 'b1', 'c1');
    await claim('d1', 2);
    // a1's lease went to another dispatcher: d1's finish of it must change nothing.
    await ctx.db.query(`UPDATE tasks SET lease_owner = 'd2' WHERE id = $1`, [ids.get('a1')]);
    const result = await claim('d1', 0, [
      { id: ids.get('a1') as string, outcome: COMPLETED },
      { id: ids.get('b1') as string, outcome: COMPLETED },
    ]);
    expect(result.finished).toEqual([ids.get('b1')]);
    expect(inputs(result.tasks)).toEqual(['c1']);
    expect(await readTask(ctx.db, ids.get('a1') as string)).toMatchObject({
      state: 'running',
      lease_owner: 'd2',
    });
  });

  it('on shutdown records the finishes and claims nothing', async () => {
    const ids = await queue('a1', 'b1');
    await claim('d1', 1);
    const result = await claim('d1', 3, [{ id: ids.get('a1') as string, outcome: COMPLETED }], true);
    expect(result).toEqual({ finished: [ids.get('a1')], tasks: [], more: false });
    expect((await readTask(ctx.db, ids.get('b1') as string)).state).toBe('pending');
  });

  it('records each outcome exactly, whatever its text, and announces each finished task', async () => {
    const ids = await queue('a1', 'b1');
    await claim('d1', 2);
    const announced: string[] = [];
    const unlisten = await ctx.db.listen(TASKS_DONE_CHANNEL, (id) => announced.push(id));
    const hostile = `it's "done", {a,b} \\ NULL 'x'); DROP TABLE tasks; -- ✓ \u00e9\n\ttab`;
    try {
      await claim('d1', 0, [
        {
          id: ids.get('a1') as string,
          outcome: {
            state: 'failed',
            outputSummary: hostile,
            costTokens: 42,
            errorCode: 'E_X',
            lastError: 'NULL',
          },
        },
        { id: ids.get('b1') as string, outcome: { ...COMPLETED, state: 'cancelled' } },
      ]);
      await waitFor('both finishes announced', async () => announced.length === 2, 10_000);
    } finally {
      await unlisten();
    }
    expect(announced.sort()).toEqual([ids.get('a1'), ids.get('b1')].sort());
    const { rows } = await ctx.db.query(
      `SELECT input, state, output_summary, cost_tokens, error_code, last_error, lease_owner, ended_at IS NOT NULL AS ended
         FROM tasks ORDER BY seq`,
    );
    expect(rows).toEqual([
      {
        input: 'a1',
        state: 'failed',
        output_summary: hostile,
        cost_tokens: 42,
        error_code: 'E_X',
        last_error: 'NULL',
        lease_owner: null,
        ended: true,
      },
      {
        input: 'b1',
        state: 'cancelled',
        output_summary: null,
        cost_tokens: null,
        error_code: null,
        last_error: null,
        lease_owner: null,
        ended: true,
      },
    ]);
  });
});

describeEachDatabase('a dispatcher finishing through ctx.finish', (ctx) => {
  let dispatcher: Dispatcher | undefined;

  afterEach(async () => {
    await dispatcher?.stop();
    dispatcher = undefined;
    await ctx.db.query('DELETE FROM tasks');
  });

  function start(db: Db, runTask: TaskRunner): Promise<void> {
    dispatcher = new Dispatcher({
      db,
      logger: silentLogger,
      runTask,
      concurrency: 3,
      pollMs: 500,
      leaseMs: LEASE_MS,
      shutdownGraceMs: 5_000,
      // ctx.finish shares the claim statement only with claiming ahead on (off by default).
      claimAhead: { enabled: true },
    });
    return dispatcher.start();
  }

  it('runs every task once, the tasks of a session one at a time in seq order, within its slots', async () => {
    const a = await insertSessionFor(ctx.db, '/claims/dispatch/a');
    const b = await insertSessionFor(ctx.db, '/claims/dispatch/b');
    const queued: string[] = [];
    for (let i = 0; i < 12; i++) queued.push(await queueAgentTask(ctx.db, i % 3 === 0 ? b : a, `t${i}`));
    const started: { id: string; session: string | null }[] = [];
    const active = new Set<string | null>();
    let overlaps = 0;
    let mostAtOnce = 0;
    let inFlight = 0;
    await start(ctx.db, async (task, run) => {
      started.push({ id: task.id, session: task.sessionId });
      if (active.has(task.sessionId)) overlaps++;
      active.add(task.sessionId);
      mostAtOnce = Math.max(mostAtOnce, ++inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      active.delete(task.sessionId);
      inFlight--;
      if (!(await run.finish(COMPLETED))) throw new Error(`lost ${task.id}`);
    });
    await waitFor(
      'all tasks completed',
      async () => {
        const { rows } = await ctx.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tasks WHERE state = 'completed' AND attempts = 1`,
        );
        return rows[0]?.n === queued.length;
      },
      30_000,
    );
    expect(started.map((s) => s.id).sort()).toEqual([...queued].sort());
    expect(overlaps).toBe(0);
    expect(mostAtOnce).toBeLessThanOrEqual(3);
    for (const session of [a.sessionId, b.sessionId]) {
      const order = started.filter((s) => s.session === session).map((s) => queued.indexOf(s.id));
      expect(order).toEqual([...order].sort((x, y) => x - y));
    }
  });

  it('tells a runner whose lease was taken over that its finish was refused', async () => {
    const ids = await insertSessionFor(ctx.db, '/claims/dispatch/lost');
    const id = await queueAgentTask(ctx.db, ids, 'lost');
    let finished: boolean | undefined;
    await start(ctx.db, async (task, run) => {
      await ctx.db.query(`UPDATE tasks SET lease_owner = 'another-dispatcher' WHERE id = $1`, [task.id]);
      finished = await run.finish(COMPLETED);
    });
    await waitFor('the runner finished', async () => finished !== undefined, 30_000);
    expect(finished).toBe(false);
    expect(await readTask(ctx.db, id)).toMatchObject({ state: 'running', lease_owner: 'another-dispatcher' });
  });

  it('records a finish sent during shutdown and claims nothing more', async () => {
    const ids = await insertSessionFor(ctx.db, '/claims/dispatch/stop');
    const first = await queueAgentTask(ctx.db, ids, 'first');
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let runs = 0;
    await start(ctx.db, async (_task, run) => {
      runs++;
      await held;
      await run.finish(COMPLETED);
    });
    await waitFor('the first task started', async () => runs === 1, 30_000);
    const second = await queueAgentTask(ctx.db, ids, 'second');
    const stopped = dispatcher?.stop();
    release();
    await stopped;
    expect(runs).toBe(1);
    expect((await readTask(ctx.db, first)).state).toBe('completed');
    expect(await readTask(ctx.db, second)).toMatchObject({ state: 'pending', attempts: 0 });
  });
});
