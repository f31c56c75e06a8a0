/**
 * boocoder's queue under test: the real Dispatcher (src/dispatcher/dispatcher.ts) with a runner
 * that does no agent work. It records when it was started and then records the task completed
 * through ctx.finish (the dispatcher's way for a runner to write its final state while it holds the
 * lease), so claim and completion are both measured: one completed state written per task, as
 * graphile-worker deletes one finished job per job.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Db } from '../src/db/db.js';
import { insertTask } from '../src/db/task-inserts.js';
import { Dispatcher } from '../src/dispatcher/dispatcher.js';
import { handOverInserted } from '../src/dispatcher/slot-reservation.js';
import type { TaskRunner } from '../src/dispatcher/task-runner.js';
import { silentLogger } from '../src/log.js';
import { queueManyTasks, seedSession } from './bench-db.js';
import { now, Signals } from './stats.js';

const COMPLETED = {
  state: 'completed',
  outputSummary: null,
  costTokens: null,
  errorCode: null,
  lastError: null,
} as const;

/**
 * Production defaults (config.ts): a 2 s fallback poll, 30 s leases; claiming ahead and batched
 * finishes on (BOOCODER_CLAIM_AHEAD=1), as a queue of no-op jobs is what they are for.
 */
function dispatcherFor(db: Db, runTask: TaskRunner, concurrency: number): Dispatcher {
  return new Dispatcher({
    db,
    logger: silentLogger,
    runTask,
    concurrency,
    pollMs: 2000,
    leaseMs: 30_000,
    shutdownGraceMs: 5000,
    claimAhead: { enabled: true },
  });
}

/**
 * Pickup latency: the task INSERT is sent → the dispatcher has claimed the task and called the
 * runner, one task at a time, the dispatcher idle in between (the previous task finished and
 * `gapMs` passed). The clock starts before the INSERT statement, as graphile-worker's starts
 * before add_job. The insert is new_task's (queueTask): with a slot of the process's dispatcher
 * reserved first, so the INSERT claims the task and hands it over (slot-reservation.ts); the rest
 * of queueTask (resolving the project, session and chat) is not the queue's and is not timed.
 * Returns one sample per task (ms).
 */
export async function boocoderPickup(
  db: Db,
  o: { tasks: number; warmup: number; concurrency: number; gapMs: number },
): Promise<number[]> {
  const seeded = await seedSession(db, `/bench/pickup/${db.kind}`);
  const started = new Signals<number>();
  const finished = new Signals<void>();
  // Keyed by input: the runner can start before the INSERT's own reply has been read.
  const dispatcher = dispatcherFor(
    db,
    async (task, ctx) => {
      started.resolve(task.input, now());
      if (!(await ctx.finish(COMPLETED))) throw new Error(`lost task ${task.id}`);
      finished.resolve(task.input, undefined);
    },
    o.concurrency,
  );
  await dispatcher.start();
  const samples: number[] = [];
  try {
    await delay(200);
    for (let i = 0; i < o.warmup + o.tasks; i++) {
      const key = `pickup-${i}`;
      const sent = now();
      const slot = dispatcher.reserveSlot();
      const task = insertTask(db, {
        ...seeded,
        input: key,
        agent: 'bench',
        model: null,
        parentTaskId: null,
        maxAttempts: 3,
        claimedBy: slot?.claim,
      });
      await handOverInserted(
        slot,
        task.then((t) => ({ task: t })),
      );
      const startedAt = await started.wait(key, 10_000);
      await finished.wait(key, 10_000);
      if (i >= o.warmup) samples.push(startedAt - sent);
      await delay(o.gapMs);
    }
  } finally {
    await dispatcher.stop();
  }
  return samples;
}

/**
 * Claim throughput: `count` tasks (one session each) are queued first, untimed; then a dispatcher
 * with `concurrency` slots starts and the clock runs until the last task is recorded completed.
 */
export async function boocoderThroughput(
  db: Db,
  o: { count: number; concurrency: number },
): Promise<{ seconds: number; perSecond: number }> {
  const seeded = await seedSession(db, `/bench/throughput/${db.kind}`);
  await queueManyTasks(db, seeded.projectId, o.count);
  await db.query('ANALYZE tasks');
  let done = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const dispatcher = dispatcherFor(
    db,
    async (task, ctx) => {
      if (!(await ctx.finish(COMPLETED))) throw new Error(`lost task ${task.id}`);
      if (++done === o.count) allDone();
    },
    o.concurrency,
  );
  const t0 = now();
  await dispatcher.start();
  try {
    await finished;
    const seconds = (now() - t0) / 1000;
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE state <> 'completed' AND input = 'no-op'",
    );
    if (rows[0]?.n !== 0) throw new Error(`${rows[0]?.n} tasks were not completed`);
    return { seconds, perSecond: o.count / seconds };
  } finally {
    await dispatcher.stop();
  }
}
