/**
 * The queue peer: graphile-worker (the real package, a dev dependency) on the same PostgreSQL
 * server as boocoder's run, with its default, unbatched settings. It runs in this process,
 * after boocoder's half has stopped, so the two never compete for the two cores.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Logger, makeWorkerUtils, type Runner, run, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { packageVersion } from './machine.js';
import { now, Signals, waitFor } from './stats.js';

export const GRAPHILE_NAME = `graphile-worker ${packageVersion('graphile-worker')}`;

// graphile-worker logs every completed job at info level: that would time the console, not the queue.
const silent = new Logger(() => () => {});

interface Started {
  utils: WorkerUtils;
  runner: Runner;
  stop(): Promise<void>;
}

/**
 * The pool graphile-worker uses is ours, so it is surely ended before the bench database is
 * dropped; and its 'error' event is handled (an idle client whose backend is terminated would
 * otherwise crash the run).
 */
function ownPool(url: string): pg.Pool {
  // 10: graphile-worker's default maxPoolSize, and boocoder's pool size too.
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => {});
  return pool;
}

/** graphile-worker's pool and utilities, its schema migrated: what is set up before any clock runs. */
async function prepareWorker(url: string): Promise<{ pgPool: pg.Pool; utils: WorkerUtils }> {
  const pgPool = ownPool(url);
  const utils = await makeWorkerUtils({ pgPool, logger: silent });
  await utils.migrate();
  return { pgPool, utils };
}

async function runWorker(
  prepared: { pgPool: pg.Pool; utils: WorkerUtils },
  concurrency: number,
  onJob: (payload: { key: string }) => void,
): Promise<Started> {
  const { pgPool, utils } = prepared;
  const runner = await run({
    pgPool,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2000,
    logger: silent,
    crontab: '',
    taskList: {
      bench: async (payload) => {
        onJob(payload as { key: string });
      },
    },
  });
  return {
    utils,
    runner,
    async stop() {
      await runner.stop();
      await utils.release();
      await pgPool.end();
    },
  };
}

/**
 * Pickup latency: `addJob` sent → the task function starts, one job at a time with the worker
 * idle in between (each job has completed and `gapMs` passed). Returns one sample per job (ms).
 */
export async function graphilePickup(
  url: string,
  o: { jobs: number; warmup: number; concurrency: number; gapMs: number },
): Promise<number[]> {
  const started = new Signals<number>();
  const completed = new Signals<void>();
  const w = await runWorker(await prepareWorker(url), o.concurrency, (p) => started.resolve(p.key, now()));
  w.runner.events.on('job:complete', ({ job }) =>
    completed.resolve((job.payload as { key: string }).key, undefined),
  );
  const samples: number[] = [];
  try {
    await delay(200); // the pool's LISTEN is in place and its first empty poll is over
    for (let i = 0; i < o.warmup + o.jobs; i++) {
      const key = `gw-${i}`;
      const sent = now();
      await w.utils.addJob('bench', { key });
      const startedAt = await started.wait(key, 10_000);
      await completed.wait(key, 10_000);
      if (i >= o.warmup) samples.push(startedAt - sent);
      await delay(o.gapMs);
    }
  } finally {
    await w.stop();
  }
  return samples;
}

async function countJobs(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker.jobs');
  return Number(rows[0]?.n ?? -1);
}

/**
 * Throughput: `count` jobs are queued first (in batches, untimed, with the schema migrated and the
 * pool connected), then a worker with `concurrency` starts and the clock runs until the last job is
 * completed in the database (graphile-worker completes jobs without waiting, so the job count is
 * polled to zero, over a connection opened beforehand).
 */
export async function graphileThroughput(
  url: string,
  o: { count: number; concurrency: number },
): Promise<{ seconds: number; perSecond: number }> {
  const prepared = await prepareWorker(url);
  const counter = new pg.Client({ connectionString: url });
  counter.on('error', () => {});
  let w: Started | undefined;
  try {
    await counter.connect();
    for (let i = 0; i < o.count; i += 1000) {
      const n = Math.min(1000, o.count - i);
      await prepared.utils.addJobs(
        Array.from({ length: n }, (_, j) => ({ identifier: 'bench', payload: { key: `${i + j}` } })),
      );
    }
    await prepared.utils.withPgClient((c) => c.query('ANALYZE graphile_worker._private_jobs'));
    let done = 0;
    let allHandled: () => void = () => {};
    const handled = new Promise<void>((resolve) => {
      allHandled = resolve;
    });
    const t0 = now();
    w = await runWorker(prepared, o.concurrency, () => {});
    w.runner.events.on('job:complete', () => {
      if (++done === o.count) allHandled();
    });
    await handled;
    await waitFor(
      'graphile-worker to complete its last jobs',
      async () => ((await countJobs(counter)) === 0 ? true : undefined),
      60_000,
      5,
    );
    const seconds = (now() - t0) / 1000;
    return { seconds, perSecond: o.count / seconds };
  } finally {
    await counter.end();
    if (w) await w.stop();
    else {
      await prepared.utils.release();
      await prepared.pgPool.end();
    }
  }
}
