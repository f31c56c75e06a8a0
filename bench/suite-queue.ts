/**
 * Metrics 1 and 2 of issue 5: pickup latency (PostgreSQL and PGlite) and claim throughput, each
 * against graphile-worker on the same PostgreSQL server.
 */

import { createPgDb } from '../src/db/pg.js';
import { silentLogger } from '../src/log.js';
import { createBenchDatabase, openBenchEmbedded } from './bench-db.js';
import { boocoderPickup, boocoderThroughput } from './boocoder-queue.js';
import { type BenchContext, type Suite, size } from './context.js';
import { GRAPHILE_NAME, graphilePickup, graphileThroughput } from './graphile-peer.js';
import type { Metric } from './report.js';
import { type Distribution, distribution, progress } from './stats.js';

const GAP_MS = 5;

function pickupRows(
  prefix: string,
  label: string,
  ours: Distribution,
  peer: Distribution,
  withTargets: boolean,
): Metric[] {
  return (['p50', 'p90', 'p99'] as const).map((p) => ({
    id: `${prefix}.${p}`,
    label: `${label} ${p}`,
    unit: 'ms',
    boocoder: ours[p],
    peer: peer[p],
    peerName: `${GRAPHILE_NAME}, PostgreSQL`,
    ...(withTargets && p !== 'p90' ? { target: { kind: 'ratio-max', value: 0.75 } as const } : {}),
    detail: { boocoder: ours, peer: peer },
  }));
}

/**
 * Runs the two sides in the order ours, peer, peer, ours: load on the machine that drifts during the
 * suite (a shared machine's, or the database's own background work) then weighs on both alike,
 * rather than on whichever side happens to run second.
 */
async function inBalancedOrder<T>(
  ours: (round: number) => Promise<T>,
  peer: (round: number) => Promise<T>,
): Promise<{ ours: T[]; peer: T[] }> {
  const a1 = await ours(1);
  const b1 = await peer(1);
  const b2 = await peer(2);
  const a2 = await ours(2);
  return { ours: [a1, a2], peer: [b1, b2] };
}

export const pickupSuite: Suite = {
  name: 'pickup',
  description: 'insert → runner started, idle dispatcher, vs graphile-worker add_job → task start',
  async run(ctx: BenchContext) {
    const total = size(ctx, 500, 60);
    // Each side runs twice (see inBalancedOrder), half the samples each time.
    const o = {
      tasks: Math.ceil(total / 2),
      warmup: size(ctx, 50, 10),
      concurrency: ctx.concurrency,
      gapMs: GAP_MS,
    };
    const bench = await createBenchDatabase(ctx.adminUrl, 'pickup');
    let runs: { ours: number[][]; peer: number[][] };
    try {
      runs = await inBalancedOrder(
        async (round) => {
          progress(`pickup: boocoder on PostgreSQL, ${o.tasks} tasks (round ${round} of 2)`);
          const db = createPgDb({ connectionString: bench.url, logger: silentLogger });
          try {
            return await boocoderPickup(db, o);
          } finally {
            await db.close();
          }
        },
        (round) => {
          progress(`pickup: ${GRAPHILE_NAME} on the same database, ${o.tasks} jobs (round ${round} of 2)`);
          return graphilePickup(bench.url, {
            jobs: o.tasks,
            warmup: o.warmup,
            concurrency: o.concurrency,
            gapMs: GAP_MS,
          });
        },
      );
    } finally {
      await bench.drop();
    }
    progress(`pickup: boocoder on the embedded PostgreSQL, ${total} tasks`);
    const lite = await openBenchEmbedded();
    let ourLite: number[];
    try {
      ourLite = await boocoderPickup(lite, { ...o, tasks: total });
    } finally {
      await lite.close();
    }
    const peerDist = distribution(runs.peer.flat());
    return [
      ...pickupRows(
        'pickup.pg',
        'pickup latency, PostgreSQL,',
        distribution(runs.ours.flat()),
        peerDist,
        true,
      ),
      ...pickupRows(
        'pickup.embedded',
        'pickup latency, embedded PostgreSQL,',
        distribution(ourLite),
        peerDist,
        true,
      ),
    ];
  },
};

/** One side's throughput run on a database of its own, dropped before anything else runs. */
async function throughputOn(
  ctx: BenchContext,
  purpose: string,
  measure: (url: string) => Promise<{ seconds: number; perSecond: number }>,
): Promise<{ seconds: number; perSecond: number }> {
  // The dead rows one run leaves must not be vacuumed while another is timed.
  const bench = await createBenchDatabase(ctx.adminUrl, purpose);
  try {
    return await measure(bench.url);
  } finally {
    await bench.drop();
  }
}

export const throughputSuite: Suite = {
  name: 'throughput',
  description: '20k queued no-op tasks drained with the same concurrency, vs graphile-worker',
  async run(ctx: BenchContext) {
    const count = size(ctx, 20_000, 2000);
    const runs = await inBalancedOrder(
      (round) =>
        throughputOn(ctx, 'throughput', async (url) => {
          progress(
            `throughput: boocoder, ${count} tasks, concurrency ${ctx.concurrency} (round ${round} of 2)`,
          );
          const db = createPgDb({ connectionString: url, logger: silentLogger });
          try {
            return await boocoderThroughput(db, { count, concurrency: ctx.concurrency });
          } finally {
            await db.close();
          }
        }),
      (round) =>
        throughputOn(ctx, 'throughputpeer', (url) => {
          progress(
            `throughput: ${GRAPHILE_NAME}, ${count} jobs, concurrency ${ctx.concurrency} (round ${round} of 2)`,
          );
          return graphileThroughput(url, { count, concurrency: ctx.concurrency });
        }),
    );
    const seconds = (side: { seconds: number }[]) => side.reduce((sum, r) => sum + r.seconds, 0);
    return [
      {
        id: 'throughput.pg',
        label: `claim throughput, ${count} no-op tasks, concurrency ${ctx.concurrency}`,
        unit: 'tasks/s',
        boocoder: (2 * count) / seconds(runs.ours),
        peer: (2 * count) / seconds(runs.peer),
        peerName: `${GRAPHILE_NAME}, unbatched`,
        target: { kind: 'ratio-min', value: 1.5 },
        detail: {
          count,
          concurrency: ctx.concurrency,
          boocoderSeconds: runs.ours.map((r) => r.seconds),
          peerSeconds: runs.peer.map((r) => r.seconds),
        },
      },
    ];
  },
};
