/**
 * Metrics 1 and 2 of issue 5: pickup latency (PostgreSQL and PGlite) and claim throughput, each
 * against graphile-worker on the same PostgreSQL database.
 */

import { createPgDb } from '../src/db/pg.js';
import { silentLogger } from '../src/log.js';
import { createBenchDatabase, openBenchPglite } from './bench-db.js';
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

export const pickupSuite: Suite = {
  name: 'pickup',
  description: 'insert → runner started, idle dispatcher, vs graphile-worker add_job → task start',
  async run(ctx: BenchContext) {
    const o = {
      tasks: size(ctx, 500, 60),
      warmup: size(ctx, 50, 10),
      concurrency: ctx.concurrency,
      gapMs: GAP_MS,
    };
    const bench = await createBenchDatabase(ctx.adminUrl, 'pickup');
    let ours: number[];
    let peer: number[];
    try {
      progress(`pickup: boocoder on PostgreSQL, ${o.tasks} tasks`);
      const db = createPgDb({ connectionString: bench.url, logger: silentLogger });
      try {
        ours = await boocoderPickup(db, o);
      } finally {
        await db.close();
      }
      progress(`pickup: ${GRAPHILE_NAME} on the same database, ${o.tasks} jobs`);
      peer = await graphilePickup(bench.url, {
        jobs: o.tasks,
        warmup: o.warmup,
        concurrency: o.concurrency,
        gapMs: GAP_MS,
      });
    } finally {
      await bench.drop();
    }
    progress(`pickup: boocoder on PGlite, ${o.tasks} tasks`);
    const lite = await openBenchPglite();
    let ourLite: number[];
    try {
      ourLite = await boocoderPickup(lite, o);
    } finally {
      await lite.close();
    }
    const peerDist = distribution(peer);
    return [
      ...pickupRows('pickup.pg', 'pickup latency, PostgreSQL,', distribution(ours), peerDist, true),
      ...pickupRows('pickup.pglite', 'pickup latency, PGlite,', distribution(ourLite), peerDist, false),
    ];
  },
};

export const throughputSuite: Suite = {
  name: 'throughput',
  description: '20k queued no-op tasks drained with the same concurrency, vs graphile-worker',
  async run(ctx: BenchContext) {
    const count = size(ctx, 20_000, 2000);
    const bench = await createBenchDatabase(ctx.adminUrl, 'throughput');
    try {
      progress(`throughput: boocoder, ${count} tasks, concurrency ${ctx.concurrency}`);
      const db = createPgDb({ connectionString: bench.url, logger: silentLogger });
      let ours: { seconds: number; perSecond: number };
      try {
        ours = await boocoderThroughput(db, { count, concurrency: ctx.concurrency });
      } finally {
        await db.close();
      }
      progress(`throughput: ${GRAPHILE_NAME}, ${count} jobs, concurrency ${ctx.concurrency}`);
      const peer = await graphileThroughput(bench.url, { count, concurrency: ctx.concurrency });
      return [
        {
          id: 'throughput.pg',
          label: `claim throughput, ${count} no-op tasks, concurrency ${ctx.concurrency}`,
          unit: 'tasks/s',
          boocoder: ours.perSecond,
          peer: peer.perSecond,
          peerName: `${GRAPHILE_NAME}, unbatched`,
          target: { kind: 'ratio-min', value: 1.5 },
          detail: {
            count,
            concurrency: ctx.concurrency,
            boocoderSeconds: ours.seconds,
            peerSeconds: peer.seconds,
          },
        },
      ];
    } finally {
      await bench.drop();
    }
  },
};
