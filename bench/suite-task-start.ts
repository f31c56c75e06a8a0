/**
 * Metric 4 of issue 5: task start. The clock starts when the client sends `new_task` to a real
 * `boocoder serve` (PostgreSQL, production dispatcher and runner) and stops when the fixture ACP
 * agent begins its turn. The agent's script is `write <marker>` then `say started`: the marker file
 * is created immediately before the agent sends its first session/update, and the bench sees its
 * creation through inotify (fs.watch), so nothing in src/ is instrumented.
 *
 * Every run today starts a new agent process (cold). "New session" runs also create the session's
 * git worktree; "same session" runs reuse it. Warm start (a live ACP session kept per chat) does
 * not exist yet: issue 3. Its row stays pending rather than show a number that was not measured.
 */
import { existsSync, type FSWatcher, watch } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createBenchDatabase } from './bench-db.js';
import { type BenchContext, type Suite, size } from './context.js';
import { makeRepo } from './git-repo.js';
import { callTool, connectHttp, runTaskToEnd } from './mcp-clients.js';
import type { Metric } from './report.js';
import { makeBenchHome, removeHome, startServe } from './serve-process.js';
import { distribution, now, progress } from './stats.js';

const TIMEOUT_MS = 60_000;

/**
 * Resolves with the time `marker` appears in a session worktree under `worktreesRoot`. A worktree
 * folder that appears later (a new session) is watched as soon as it appears: git creates it long
 * before the agent process exists.
 */
function watchForMarker(
  worktreesRoot: string,
  marker: string,
  existingWorktree: string | undefined,
): { appeared: Promise<number>; close(): void } {
  const watchers: FSWatcher[] = [];
  let settle: (t: number) => void = () => {};
  let fail: (e: Error) => void = () => {};
  const appeared = new Promise<number>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // Awaited only after new_task returns: a failure before that must not count as unhandled.
  appeared.catch(() => {});
  const timer = setTimeout(
    () => fail(new Error(`${marker} did not appear within ${TIMEOUT_MS} ms`)),
    TIMEOUT_MS,
  );
  const watchWorktree = (dir: string) => {
    const w = watch(dir, (_event, name) => {
      if (name === marker) settle(now());
    });
    watchers.push(w);
    // Attached after the agent already wrote it: the sample would be wrong, so there is none.
    if (existsSync(join(dir, marker))) fail(new Error(`${marker} existed before its watcher`));
  };
  const seen = new Set<string>();
  const root = watch(worktreesRoot, (_event, name) => {
    if (!name || seen.has(name)) return;
    seen.add(name);
    if (existsSync(join(worktreesRoot, name))) watchWorktree(join(worktreesRoot, name));
  });
  watchers.push(root);
  if (existingWorktree) watchWorktree(join(worktreesRoot, existingWorktree));
  return {
    appeared,
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}

async function sampleStart(
  client: Client,
  worktreesRoot: string,
  o: { project: string; sessionId?: string; n: number },
): Promise<{ ms: number; sessionId: string }> {
  const marker = `.bench-start-${o.n}`;
  const watcher = watchForMarker(worktreesRoot, marker, o.sessionId);
  try {
    const sent = now();
    const queued = (
      await callTool(client, 'new_task', {
        project: o.project,
        input: `write ${marker} started\nsay started`,
        ...(o.sessionId ? { session_id: o.sessionId } : {}),
      })
    ).structuredContent as { task_id: string; session_id: string; agent: string };
    const seenAt = await watcher.appeared;
    const end = (await callTool(client, 'get_task', { task_id: queued.task_id, wait_s: 30 }))
      .structuredContent as {
      state: string;
    };
    if (end.state !== 'completed') throw new Error(`task ${queued.task_id} ended ${end.state}`);
    return { ms: seenAt - sent, sessionId: queued.session_id };
  } finally {
    watcher.close();
  }
}

export const taskStartSuite: Suite = {
  name: 'task-start',
  description: 'new_task → the fixture ACP agent starts its turn (cold); warm is pending issue 3',
  async run(ctx: BenchContext) {
    const runs = size(ctx, 10, 3);
    const bench = await createBenchDatabase(ctx.adminUrl, 'taskstart');
    const repo = await makeRepo('taskstart', [['README.md', '# bench\n']]);
    const home = await makeBenchHome();
    const worktreesRoot = join(home, 'worktrees');
    await mkdir(worktreesRoot, { recursive: true });
    try {
      const serve = await startServe(home, { DATABASE_URL: bench.url });
      const client = await connectHttp(serve.url);
      try {
        // Untimed: fills the page cache and tsx's transform cache for the fixture agent.
        await runTaskToEnd(client, { project: repo, input: 'say warming up' });
        progress(`task-start: ${runs} cold starts in new sessions, ${runs} in an existing one`);
        const fresh: number[] = [];
        const same: number[] = [];
        let sessionId: string | undefined;
        for (let i = 0; i < runs; i++) {
          const a = await sampleStart(client, worktreesRoot, { project: repo, n: 2 * i });
          fresh.push(a.ms);
          sessionId ??= a.sessionId;
          const b = await sampleStart(client, worktreesRoot, { project: repo, sessionId, n: 2 * i + 1 });
          same.push(b.ms);
        }
        const freshD = distribution(fresh);
        const sameD = distribution(same);
        const metrics: Metric[] = [
          {
            id: 'task-start.cold.new-session.p50',
            label: 'task start, cold, new session (fixture agent) p50',
            unit: 'ms',
            boocoder: freshD.p50,
            peer: null,
            detail: { samples: fresh, ...freshD },
          },
          {
            id: 'task-start.cold.same-session.p50',
            label: 'task start, cold, existing session (fixture agent) p50',
            unit: 'ms',
            boocoder: sameD.p50,
            peer: null,
            detail: { samples: same, ...sameD },
          },
          {
            id: 'task-start.warm.fixture.p50',
            label: 'task start, warm, same chat (fixture agent) p50',
            unit: 'ms',
            boocoder: null,
            pending: 'pending issue 3',
            peer: sameD.p50,
            peerName: 'cold start, same session',
          },
          {
            id: 'task-start.warm.opencode.p50',
            label: 'task start, warm vs cold, real opencode',
            unit: 'ms',
            boocoder: null,
            pending: 'pending issue 3',
            peer: null,
            target: { kind: 'ratio-max', value: 0.1 },
          },
        ];
        return metrics;
      } finally {
        await client.close();
        await serve.stop();
      }
    } finally {
      await removeHome(home);
      await removeHome(repo);
      await bench.drop();
    }
  },
};
