/**
 * Metric 6 of issue 5: resident memory of a real `boocoder serve` (bin/boocoder.js, as started by
 * `npm start`), on PostgreSQL and on the embedded PGlite, idle and after 10,000 tasks.
 *
 * "After 10k tasks": 10,000 `new_task` calls (2,000 on PGlite, for time) over HTTP (8 in flight), all in one session behind a
 * task whose agent is busy (`sleep`), so they stay queued: the server has handled 10k tool calls and
 * holds 10k tasks, without 10k agent processes (about 1 s each) that would not fit the time budget.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createBenchDatabase } from './bench-db.js';
import { type BenchContext, type Suite, size } from './context.js';
import { makeRepo } from './git-repo.js';
import { callTool, connectHttp } from './mcp-clients.js';
import type { Metric } from './report.js';
import {
  embeddedPss,
  type MemoryReading,
  makeBenchHome,
  removeHome,
  type ServeProcess,
  startServe,
} from './serve-process.js';
import { median, now, progress, waitFor } from './stats.js';

const IN_FLIGHT = 8;

/** The reading of median RSS among five taken 200 ms apart: one reading can land mid-allocation. */
async function settledMemory(serve: ServeProcess): Promise<MemoryReading> {
  const readings: MemoryReading[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(await serve.memory());
    await delay(200);
  }
  const rss = median(readings.map((r) => r.rss));
  return readings.find((r) => r.rss === rss) as MemoryReading;
}

async function queueBehindBusyTask(client: Client, repo: string, count: number): Promise<number> {
  const blocker = (await callTool(client, 'new_task', { project: repo, input: 'sleep 600000' }))
    .structuredContent as {
    task_id: string;
    session_id: string;
    project_id: string;
  };
  await waitFor(
    'the busy task to start',
    async () => {
      const t = (await callTool(client, 'get_task', { task_id: blocker.task_id })).structuredContent as {
        state: string;
      };
      return t.state === 'running' ? true : undefined;
    },
    60_000,
    100,
  );
  let next = 0;
  const t0 = now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      // By project id, as a client that already has it would: the path form adds two git calls.
      await callTool(client, 'new_task', {
        project: blocker.project_id,
        session_id: blocker.session_id,
        input: `say task ${i}`,
      });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return (count / (now() - t0)) * 1000;
}

interface Measured {
  /** Idle after the first start (on the embedded default that start also runs initdb). */
  idle: MemoryReading;
  /** Embedded only: idle after a restart on the now existing cluster, the everyday case. */
  idleRestart?: MemoryReading;
  /** Embedded only: PSS in MB of serve plus its PostgreSQL, idle after that restart. */
  idlePss?: number;
  after: MemoryReading;
  newTaskPerSecond: number;
}

async function idleMemory(
  home: string,
  env: Record<string, string>,
): Promise<MemoryReading & { pss?: number }> {
  const serve = await startServe(home, env);
  try {
    await delay(3000);
    const reading = await settledMemory(serve);
    return env.DATABASE_URL === undefined ? { ...reading, pss: await embeddedPss(serve.pid, home) } : reading;
  } finally {
    await serve.stop();
  }
}

async function measure(
  label: string,
  dbEnv: Record<string, string>,
  repo: string,
  count: number,
): Promise<Measured> {
  const home = await makeBenchHome();
  const env = {
    ...dbEnv,
    BOOCODER_SHUTDOWN_GRACE_MS: '0',
    BOOCODER_MAX_QUEUED_PER_PROJECT: String(count + 100),
  };
  try {
    const idle = await idleMemory(home, env);
    progress(`memory: ${label}: idle ${idle.rss.toFixed(1)} MB`);
    const embedded = dbEnv.DATABASE_URL === undefined;
    const idleRestart = embedded ? await idleMemory(home, env) : undefined;
    if (idleRestart) progress(`memory: ${label}: idle after a restart ${idleRestart.rss.toFixed(1)} MB`);
    const serve = await startServe(home, env);
    try {
      await delay(1000);
      const client = await connectHttp(serve.url);
      let newTaskPerSecond: number;
      try {
        newTaskPerSecond = await queueBehindBusyTask(client, repo, count);
      } finally {
        await client.close();
      }
      progress(`memory: ${label}: ${count} tasks queued, ${newTaskPerSecond.toFixed(0)} new_task/s`);
      await delay(2000);
      const after = await settledMemory(serve);
      return {
        idle,
        ...(idleRestart ? { idleRestart, idlePss: idleRestart.pss } : {}),
        after,
        newTaskPerSecond,
      };
    } finally {
      await serve.stop();
    }
  } finally {
    await removeHome(home);
  }
}

export const memorySuite: Suite = {
  name: 'memory',
  description: 'RSS of an idle boocoder serve (PostgreSQL, embedded PostgreSQL) and after 10k new_task calls',
  async run(ctx: BenchContext) {
    const count = size(ctx, 10_000, 500);
    const liteCount = count;
    const bench = await createBenchDatabase(ctx.adminUrl, 'memory');
    const repo = await makeRepo('memory', [['README.md', '# bench\n']]);
    try {
      const pg = await measure('PostgreSQL', { DATABASE_URL: bench.url }, repo, count);
      const lite = await measure('embedded PostgreSQL', {}, repo, liteCount);
      const row = (id: string, label: string, m: MemoryReading, extra: Partial<Metric> = {}): Metric => ({
        id,
        label,
        unit: 'MB',
        boocoder: m.rss,
        peer: null,
        ...extra,
        detail: { ...m, ...extra.detail },
      });
      return [
        row('memory.idle.pg', 'RSS, idle serve, PostgreSQL', pg.idle, {
          target: { kind: 'abs-max', value: 120 },
        }),
        row('memory.idle.embedded', 'RSS, idle serve, embedded PostgreSQL, first start', lite.idle),
        ...(lite.idleRestart
          ? [
              row(
                'memory.idle-restart.embedded',
                'RSS, idle serve, embedded PostgreSQL, restart',
                lite.idleRestart,
              ),
            ]
          : []),
        ...(lite.idlePss !== undefined
          ? [
              {
                id: 'memory.idle-pss.embedded',
                label: 'PSS, idle serve + its embedded PostgreSQL, restart',
                unit: 'MB',
                boocoder: lite.idlePss,
                peer: null,
                target: { kind: 'abs-max', value: 150 },
              } satisfies Metric,
            ]
          : []),
        row('memory.after.pg', `RSS after ${count} new_task, PostgreSQL`, pg.after, {
          detail: { newTaskPerSecond: pg.newTaskPerSecond },
        }),
        row('memory.after.embedded', `RSS after ${liteCount} new_task, embedded PostgreSQL`, lite.after, {
          detail: { newTaskPerSecond: lite.newTaskPerSecond },
        }),
      ];
    } finally {
      await removeHome(repo);
      await bench.drop();
    }
  },
};
