/**
 * Metric 3 of issue 5: MCP round trip. `tools/call get_task` (two indexed reads) against boocoder,
 * and `tools/call echo` against server-everything, through the same SDK Client, over stdio and over
 * streamable HTTP. Calls are sequential and the two servers alternate in blocks, so drift on the
 * machine hits both alike. boocoder runs on PostgreSQL; the stdio bridge on PGlite (what an MCP
 * client gets without DATABASE_URL) is measured too.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createPgDb } from '../src/db/pg.js';
import { findTaskWithChangeCount } from '../src/db/tasks.js';
import { silentLogger } from '../src/log.js';
import { createBenchDatabase } from './bench-db.js';
import { type BenchContext, type Suite, size } from './context.js';
import { makeRepo } from './git-repo.js';
import {
  callTool,
  connectEverythingStdio,
  connectHttp,
  connectStdio,
  EVERYTHING_NAME,
  runTaskToEnd,
  startEverythingHttp,
} from './mcp-clients.js';
import type { Metric } from './report.js';
import { BOOCODER_BIN, makeBenchHome, removeHome, startServe } from './serve-process.js';
import { type Distribution, distribution, now, progress, waitFor } from './stats.js';

interface Pair {
  ours: number[];
  peer: number[];
}

/** `blocks` alternating blocks of `perBlock` sequential calls each, after `warmup` calls each. */
async function alternate(
  ours: () => Promise<unknown>,
  peer: () => Promise<unknown>,
  o: { warmup: number; blocks: number; perBlock: number },
): Promise<Pair> {
  for (let i = 0; i < o.warmup; i++) {
    await ours();
    await peer();
  }
  const out: Pair = { ours: [], peer: [] };
  for (let b = 0; b < o.blocks; b++) {
    for (const [call, into] of [
      [ours, out.ours],
      [peer, out.peer],
    ] as const) {
      for (let i = 0; i < o.perBlock; i++) {
        const t0 = now();
        await call();
        into.push(now() - t0);
      }
    }
  }
  return out;
}

function rows(id: string, label: string, ours: Distribution, peer: Distribution): Metric[] {
  return (['p50', 'p99'] as const).map((p) => ({
    id: `${id}.${p}`,
    label: `${label} ${p}`,
    unit: 'ms',
    boocoder: ours[p],
    peer: peer[p],
    peerName: `${EVERYTHING_NAME} echo`,
    target: { kind: 'ratio-max', value: 1.3 },
    detail: { boocoder: ours, peer },
  }));
}

/**
 * The floor under boocoder's row: get_task's one SQL read, timed in this process over its own
 * connection, with no MCP at all. The peer's echo does no I/O, so this part has no counterpart.
 */
async function databaseReadAlone(url: string, taskId: string, calls: number): Promise<Metric[]> {
  const db = createPgDb({ connectionString: url, logger: silentLogger });
  try {
    for (let i = 0; i < 100; i++) await findTaskWithChangeCount(db, taskId);
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = now();
      await findTaskWithChangeCount(db, taskId);
      samples.push(now() - t0);
    }
    const d = distribution(samples);
    return (['p50', 'p99'] as const).map((p) => ({
      id: `mcp.db-read.${p}`,
      label: `get_task's SQL read alone, no MCP (PostgreSQL), ${p}`,
      unit: 'ms',
      boocoder: d[p],
      peer: null,
      detail: { boocoder: d },
    }));
  } finally {
    await db.close();
  }
}

/** Stops a daemon that `boocoder stdio` started in the background (found through daemon.json). */
async function stopDaemon(home: string): Promise<void> {
  let pid: number;
  try {
    pid = (JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  await waitFor(
    `daemon ${pid} to exit`,
    async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    },
    20_000,
    50,
  );
}

export const mcpSuite: Suite = {
  name: 'mcp',
  description: 'tools/call get_task vs server-everything echo, same Client, over stdio and HTTP',
  async run(ctx: BenchContext) {
    const plan = { warmup: size(ctx, 200, 20), blocks: 4, perBlock: size(ctx, 500, 50) };
    const bench = await createBenchDatabase(ctx.adminUrl, 'mcp');
    const repo = await makeRepo('mcp', [['README.md', '# bench\n']]);
    const pgHome = await makeBenchHome();
    const liteHome = await makeBenchHome();
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const env = { DATABASE_URL: bench.url };
      const serve = await startServe(pgHome, env);
      cleanups.push(() => serve.stop());
      const ourHttp = await connectHttp(serve.url);
      cleanups.push(() => ourHttp.close());
      const { taskId } = await runTaskToEnd(ourHttp, { project: repo, input: 'say ready' });
      const getTask = (c: Client) => () => callTool(c, 'get_task', { task_id: taskId });

      const ourStdio = await connectStdio(BOOCODER_BIN, ['stdio'], {
        ...env,
        BOOCODER_HOME: pgHome,
        BOOCODER_LOG_LEVEL: 'warning',
      });
      cleanups.push(() => ourStdio.close());
      const peerStarted = now();
      const peerStdio = await connectEverythingStdio();
      const peerStartMs = now() - peerStarted;
      cleanups.push(() => peerStdio.close());
      const everythingHttp = await startEverythingHttp();
      cleanups.push(() => everythingHttp.stop());
      const peerHttp = await connectHttp(everythingHttp.url);
      cleanups.push(() => peerHttp.close());
      const echo = (c: Client) => () => callTool(c, 'echo', { message: 'hello' });

      progress(`mcp: stdio, ${plan.blocks * plan.perBlock} calls each`);
      const stdio = await alternate(getTask(ourStdio), echo(peerStdio), plan);
      progress(`mcp: HTTP, ${plan.blocks * plan.perBlock} calls each`);
      const http = await alternate(getTask(ourHttp), echo(peerHttp), plan);

      const dbRead = await databaseReadAlone(bench.url, taskId, plan.blocks * plan.perBlock);

      progress('mcp: stdio bridge to the embedded-PostgreSQL daemon');
      // A fresh home: the bridge starts the daemon, which runs initdb before it can answer.
      const bridgeStarted = now();
      const bridge = await connectStdio(BOOCODER_BIN, ['stdio'], {
        BOOCODER_HOME: liteHome,
        BOOCODER_PG_DIR: join(liteHome, 'pg'),
        BOOCODER_LOG_LEVEL: 'warning',
      });
      const bridgeStartMs = now() - bridgeStarted;
      cleanups.push(() => stopDaemon(liteHome));
      cleanups.push(() => bridge.close());
      const bridged = await runTaskToEnd(bridge, { project: repo, input: 'say ready' });
      await delay(200);
      const viaBridge = await alternate(
        () => callTool(bridge, 'get_task', { task_id: bridged.taskId }),
        echo(peerStdio),
        plan,
      );

      return [
        ...rows(
          'mcp.stdio',
          'MCP round trip, stdio (PostgreSQL),',
          distribution(stdio.ours),
          distribution(stdio.peer),
        ),
        ...rows(
          'mcp.http',
          'MCP round trip, HTTP (PostgreSQL),',
          distribution(http.ours),
          distribution(http.peer),
        ),
        ...dbRead,
        ...rows(
          'mcp.stdio-bridge',
          'MCP round trip, stdio bridge → embedded-PostgreSQL daemon,',
          distribution(viaBridge.ours),
          distribution(viaBridge.peer),
        ),
        {
          id: 'mcp.stdio-bridge-vs-in-process.p50',
          label: 'MCP round trip p50, stdio bridge → embedded daemon vs in-process stdio on PostgreSQL',
          unit: 'ms',
          boocoder: distribution(viaBridge.ours).p50,
          peer: distribution(stdio.ours).p50,
          peerName: 'boocoder stdio in-process, PostgreSQL',
          target: { kind: 'ratio-max', value: 1.2 },
        },
        {
          id: 'mcp.first-start',
          label: 'fresh home: stdio start to first answer (tools/list), embedded default',
          unit: 'ms',
          boocoder: bridgeStartMs,
          peer: peerStartMs,
          peerName: `${EVERYTHING_NAME}, stdio start`,
        },
      ];
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      await Promise.all([removeHome(pgHome), removeHome(liteHome), removeHome(repo)]);
      await bench.drop();
    }
  },
};
