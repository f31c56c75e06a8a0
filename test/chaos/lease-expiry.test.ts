/**
 * Leases on both sides of the boundary, with backdated rows instead of waiting: only leases that
 * expired are released (back to pending, or failed with E_LEASE_EXPIRED once the attempts are used
 * up), and a dispatcher that keeps renewing a lease never loses its task, however long it runs.
 */
import { afterEach, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { claimNextTask, finishTask, releaseExpiredLeases } from '../../src/db/tasks.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import type { StopReason } from '../../src/dispatcher/task-runner.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { insertSessionFor, queueAgentTask, readTask } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';

/** A task running under another owner whose lease ends `offsetMs` from the database's now. */
async function runningTask(
  db: Db,
  o: { offsetMs: number; attempts: number; maxAttempts?: number },
): Promise<string> {
  const ids = await insertSessionFor(db, `/chaos/lease/${Math.random()}`);
  const id = await queueAgentTask(db, ids, 'noop', o.maxAttempts ?? 3);
  await db.query(
    `UPDATE tasks SET state = 'running', attempts = $2, lease_owner = 'ghost-dispatcher',
            lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
      WHERE id = $1`,
    [id, o.attempts, o.offsetMs],
  );
  return id;
}

describeEachDatabase('lease expiry', (ctx) => {
  let dispatcher: Dispatcher | undefined;

  afterEach(async () => {
    await dispatcher?.stop();
    dispatcher = undefined;
    await ctx.db.query(`UPDATE tasks SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL`);
  });

  it('releases only expired leases and fails the tasks that used up their attempts', async () => {
    const db = ctx.db;
    const expiredJustNow = await runningTask(db, { offsetMs: -1, attempts: 1 });
    const expiresSoon = await runningTask(db, { offsetMs: 3000, attempts: 1 });
    const outOfAttempts = await runningTask(db, { offsetMs: -1, attempts: 3, maxAttempts: 3 });
    const secondAttempt = await runningTask(db, { offsetMs: -1, attempts: 2, maxAttempts: 3 });
    const pending = await queueAgentTask(db, await insertSessionFor(db, '/chaos/lease/pending'), 'noop');

    // The sweeper's own running task is kept: a live dispatcher whose heartbeat is late (a stalled
    // event loop) must not start its own task a second time.
    const keep = { owner: 'ghost-dispatcher', ids: [expiredJustNow] };
    expect(await releaseExpiredLeases(db, { keep })).toBe(2);
    expect(await readTask(db, expiredJustNow)).toMatchObject({
      state: 'running',
      lease_owner: 'ghost-dispatcher',
    });
    expect(await releaseExpiredLeases(db)).toBe(1);

    for (const id of [expiredJustNow, secondAttempt]) {
      expect(await readTask(db, id)).toMatchObject({
        state: 'pending',
        lease_owner: null,
        lease_expires_at: null,
        error_code: null,
      });
    }
    // Released, not retried yet: the attempt is counted when it is claimed again.
    expect((await readTask(db, expiredJustNow)).attempts).toBe(1);
    expect(await readTask(db, outOfAttempts)).toMatchObject({
      state: 'failed',
      attempts: 3,
      error_code: 'E_LEASE_EXPIRED',
      lease_owner: null,
    });
    expect(await readTask(db, expiresSoon)).toMatchObject({
      state: 'running',
      attempts: 1,
      lease_owner: 'ghost-dispatcher',
    });
    expect((await readTask(db, pending)).state).toBe('pending');

    // Move the remaining lease just past its end, as the clock would: now it goes too.
    await db.query(
      `UPDATE tasks SET lease_expires_at = clock_timestamp() - interval '1 millisecond' WHERE id = $1`,
      [expiresSoon],
    );
    expect(await releaseExpiredLeases(db)).toBe(1);
    expect(await readTask(db, expiresSoon)).toMatchObject({ state: 'pending', attempts: 1 });
    expect(await releaseExpiredLeases(db)).toBe(0);

    // FIFO among the released and the never-started; a claim raises the attempt count.
    const claimed = await claimNextTask(db, 'chaos-test', 30_000);
    expect(claimed?.id).toBe(expiredJustNow);
    expect(claimed?.attempts).toBe(2);
  });

  it('keeps a renewed lease past its length and takes over an expired one exactly once', async () => {
    const db = ctx.db;
    await db.query(CHAOS_CLAIMS_DDL);
    await db.query('DELETE FROM chaos_claims');
    const abandoned = await runningTask(db, { offsetMs: -1, attempts: 1 });
    const held = await queueAgentTask(db, await insertSessionFor(db, '/chaos/lease/held'), 'noop');
    // Each run lasts 2.5 leases: only the heartbeat keeps it from being taken over.
    dispatcher = new Dispatcher({
      db,
      logger: silentLogger,
      runTask: recordingRunner(db, 2500),
      concurrency: 4,
      pollMs: 100,
      leaseMs: 1000,
      shutdownGraceMs: 5000,
    });
    await dispatcher.start();
    await waitFor('both tasks to complete', async () => {
      const states = await Promise.all([abandoned, held].map(async (id) => (await readTask(db, id)).state));
      return states.every((s) => s === 'completed');
    });
    expect((await readTask(db, held)).attempts).toBe(1);
    expect((await readTask(db, abandoned)).attempts).toBe(2);
    const { rows } = await db.query<{ task_id: string; attempt: number; overlapping: boolean }>(
      'SELECT task_id, attempt, overlapping FROM chaos_claims ORDER BY task_id',
    );
    expect(rows.map((r) => [r.task_id, r.attempt, r.overlapping]).sort()).toEqual(
      [
        [abandoned, 2, false],
        [held, 1, false],
      ].sort(),
    );
  });

  it('stops its own agent before its lease can expire when it cannot renew it, and the task runs again', async () => {
    const db = ctx.db;
    let renewalsFail = false;
    // The database as the dispatcher sees it: reachable, except that lease renewals fail (a network
    // partition between the two heartbeats, as far as the dispatcher can tell).
    const flaky: Db = {
      ...db,
      query: (sql, params) =>
        renewalsFail && sql.includes('SET lease_expires_at')
          ? Promise.reject(new Error('connection terminated'))
          : db.query(sql, params),
    };
    const runs: { attempt: number; stoppedBy: StopReason | null; leaseStillValid?: boolean }[] = [];
    const id = await queueAgentTask(db, await insertSessionFor(db, '/chaos/lease/fenced'), 'noop');
    dispatcher = new Dispatcher({
      db: flaky,
      logger: silentLogger,
      runTask: async (task, runCtx) => {
        if (task.attempts > 1) {
          runs.push({ attempt: task.attempts, stoppedBy: null });
          await finishTask(db, task.id, runCtx.owner, {
            state: 'completed',
            outputSummary: null,
            costTokens: null,
            errorCode: null,
            lastError: null,
          });
          return;
        }
        renewalsFail = true;
        await new Promise((resolve) => runCtx.signal.addEventListener('abort', resolve, { once: true }));
        // At the moment the agent is told to stop, no other dispatcher may have taken the task yet.
        const { rows } = await db.query<{ valid: boolean }>(
          'SELECT lease_expires_at > clock_timestamp() AS valid FROM tasks WHERE id = $1',
          [task.id],
        );
        runs.push({
          attempt: task.attempts,
          stoppedBy: runCtx.signal.reason as StopReason,
          leaseStillValid: rows[0]?.valid,
        });
        renewalsFail = false;
      },
      concurrency: 1,
      pollMs: 200,
      leaseMs: 4500,
      shutdownGraceMs: 5000,
    });
    await dispatcher.start();
    await waitFor(
      'the task to run again after its lease expired',
      async () => (await readTask(db, id)).state === 'completed',
    );
    expect(runs).toEqual([
      { attempt: 1, stoppedBy: 'lease-lost', leaseStillValid: true },
      { attempt: 2, stoppedBy: null },
    ]);
  });
});
