/**
 * A dispatcher claiming ahead (src/dispatcher/claim-ahead.ts) on both backends: while runs are short
 * it holds more claimed tasks than it has slots, yet never runs more than its slots, starts tasks
 * in queue order and each once; a held task cancelled starts cancelled; held tasks go back to the
 * queue, attempt unspent, on shutdown and when held too long.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TASKS_CANCEL_CHANNEL } from '../../src/db/channels.js';
import type { TaskOutcome } from '../../src/db/tasks.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import type { DispatcherOptions, TaskRunner } from '../../src/dispatcher/task-runner.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { insertSessionFor, queueAgentTask, readTask } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';

const outcome = (state: 'completed' | 'cancelled'): TaskOutcome => ({
  state,
  outputSummary: null,
  costTokens: null,
  errorCode: null,
  lastError: null,
});

describeEachDatabase('a dispatcher claiming ahead', (ctx) => {
  let dispatcher: Dispatcher | undefined;

  beforeEach(async () => {
    await ctx.db.query('DELETE FROM tasks');
  });

  afterEach(async () => {
    await dispatcher?.stop();
    dispatcher = undefined;
  });

  function start(runTask: TaskRunner, o: Partial<DispatcherOptions> = {}): Promise<void> {
    dispatcher = new Dispatcher({
      db: ctx.db,
      logger: silentLogger,
      runTask,
      concurrency: 2,
      pollMs: 500,
      leaseMs: 30_000,
      shutdownGraceMs: 5_000,
      claimAhead: { enabled: true },
      ...o,
    });
    return dispatcher.start();
  }

  /** One task per label, each in a session of its own, queued in order; returns label → id. */
  async function queue(labels: string[]): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    for (const label of labels) {
      const session = await insertSessionFor(ctx.db, `/claim-ahead/${label}`);
      ids.set(label, await queueAgentTask(ctx.db, session, label));
    }
    return ids;
  }

  const ownedRunning = async (owner: string) =>
    (
      await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE state = 'running' AND lease_owner = $1`,
        [owner],
      )
    ).rows[0]?.n ?? 0;

  it('holds more tasks than slots while runs are short, but runs at most its slots, in order, each once', async () => {
    const ids = await queue(Array.from({ length: 60 }, (_, i) => `t${String(i).padStart(2, '0')}`));
    const started: string[] = [];
    let inFlight = 0;
    let mostAtOnce = 0;
    let mostClaimed = 0;
    await start(async (task, run) => {
      started.push(task.input);
      mostAtOnce = Math.max(mostAtOnce, ++inFlight);
      mostClaimed = Math.max(mostClaimed, await ownedRunning(run.owner));
      inFlight--;
      if (!(await run.finish(outcome('completed')))) throw new Error(`lost ${task.id}`);
    });
    await waitFor('all tasks completed', async () => {
      const { rows } = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE state = 'completed' AND attempts = 1`,
      );
      return rows[0]?.n === ids.size;
    });
    expect(started).toEqual([...ids.keys()]);
    expect(mostAtOnce).toBeLessThanOrEqual(2);
    // Claimed ahead: more of its tasks were running in the database than it has slots.
    expect(mostClaimed).toBeGreaterThan(2);
  });

  it('claims no more tasks than slots when claiming ahead is off, its default', async () => {
    const ids = await queue(Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, '0')}`));
    const started: string[] = [];
    let mostClaimed = 0;
    await start(
      async (task, run) => {
        started.push(task.input);
        mostClaimed = Math.max(mostClaimed, await ownedRunning(run.owner));
        if (!(await run.finish(outcome('completed')))) throw new Error(`lost ${task.id}`);
      },
      { claimAhead: undefined },
    );
    await waitFor('all tasks completed', async () => {
      const { rows } = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE state = 'completed' AND attempts = 1`,
      );
      return rows[0]?.n === ids.size;
    });
    expect(started).toEqual([...ids.keys()]);
    expect(mostClaimed).toBeLessThanOrEqual(2);
  });

  /**
   * Eight quick tasks (a streak of short runs), then `long`, which waits for the test, while the
   * dispatcher (one slot) holds `after` claimed ahead. Runs count as short for a minute here, so
   * `after` is claimed ahead however slow the machine.
   */
  async function holdBehindLongRun(o: Partial<DispatcherOptions> = {}) {
    const labels = [...Array.from({ length: 8 }, (_, i) => `quick${i}`), 'long', 'after'];
    const ids = await queue(labels);
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stopReasons = new Map<string, unknown>();
    const startedInputs: string[] = [];
    await start(
      async (task, run) => {
        startedInputs.push(task.input);
        if (task.input === 'long') await released;
        stopReasons.set(task.input, run.signal.aborted ? run.signal.reason : null);
        await run.finish(outcome(run.signal.aborted ? 'cancelled' : 'completed'));
      },
      { concurrency: 1, ...o, claimAhead: { enabled: true, shortRunMs: 60_000, ...o.claimAhead } },
    );
    const after = ids.get('after') as string;
    await waitFor('`after` held while `long` runs', async () => {
      const row = await readTask(ctx.db, after);
      return startedInputs.includes('long') && row.state === 'running' && !startedInputs.includes('after');
    });
    return { ids, after, release, stopReasons, startedInputs };
  }

  it('starts a task cancelled while it was held with its signal aborted, so it ends cancelled', async () => {
    const logged: string[] = [];
    const logger = createLogger('debug', {}, (line) => logged.push(line));
    const h = await holdBehindLongRun({ logger, claimAhead: { enabled: true, maxWaitMs: 60_000 } });
    await ctx.db.query('UPDATE tasks SET cancel_requested_at = clock_timestamp() WHERE id = $1', [h.after]);
    await ctx.db.query('SELECT pg_notify($1, $2)', [TASKS_CANCEL_CHANNEL, h.after]);
    // On PostgreSQL the NOTIFY reaches the dispatcher's own LISTEN connection in its own time.
    await waitFor('the cancel heard while held', () =>
      logged.some((l) => l.includes('while held') && l.includes(h.after)),
    );
    h.release();
    await waitFor('`after` ended', async () => (await readTask(ctx.db, h.after)).state === 'cancelled');
    expect(h.stopReasons.get('after')).toBe('cancel');
    expect(h.stopReasons.get('long')).toBeNull();
    expect((await readTask(ctx.db, h.ids.get('long') as string)).state).toBe('completed');
  });

  it('hands held tasks back on shutdown, attempt unspent', async () => {
    const h = await holdBehindLongRun({ claimAhead: { enabled: true, maxWaitMs: 60_000 } });
    const stopped = dispatcher?.stop();
    await waitFor('`after` handed back', async () => (await readTask(ctx.db, h.after)).state === 'pending');
    h.release();
    await stopped;
    expect(await readTask(ctx.db, h.after)).toMatchObject({
      state: 'pending',
      attempts: 0,
      lease_owner: null,
    });
    expect((await readTask(ctx.db, h.ids.get('long') as string)).state).toBe('completed');
    expect(h.startedInputs).not.toContain('after');
  });

  it('hands a task held too long back to the queue, and runs it once a slot is free', async () => {
    const h = await holdBehindLongRun({ claimAhead: { enabled: true, maxWaitMs: 300 } });
    await waitFor('`after` handed back', async () => (await readTask(ctx.db, h.after)).state === 'pending');
    expect(await readTask(ctx.db, h.after)).toMatchObject({ attempts: 0, lease_owner: null });
    h.release();
    await waitFor('`after` completed', async () => (await readTask(ctx.db, h.after)).state === 'completed');
    expect(await readTask(ctx.db, h.after)).toMatchObject({ attempts: 1 });
    expect(h.startedInputs.filter((i) => i === 'after')).toHaveLength(1);
  });
});
