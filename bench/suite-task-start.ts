/**
 * Metric 4 of issue 5: task start. The clock starts when the client sends `new_task` to a real
 * `boocoder serve` (PostgreSQL, production dispatcher and runner) and stops when the fixture ACP
 * agent begins its turn. The agent's script is `write <marker>` then `say started`: the marker file
 * is created immediately before the agent sends its first session/update, and the bench sees its
 * creation through inotify (fs.watch), so nothing in src/ is instrumented.
 *
 * Cold runs start a new agent process: "new session" runs also create the session's git worktree,
 * "new chat" runs reuse the worktree of an existing session. Warm runs follow up in the same chat,
 * on the agent process and ACP session kept from the previous task. The real opencode is measured
 * the same way in task-start-opencode.ts.
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
import { type Distribution, distribution, now, progress } from './stats.js';
import { measureOpencodeStarts, startScriptedModel, writeAgentsConfig } from './task-start-opencode.js';

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

interface StartIds {
  sessionId?: string;
  chatId?: string;
  /** The session's worktree folder already exists (watched from the start). */
  worktree?: string;
}

async function sampleStart(
  client: Client,
  worktreesRoot: string,
  o: { project: string; n: number } & StartIds,
): Promise<{ ms: number; sessionId: string; chatId: string }> {
  const marker = `.bench-start-${o.n}`;
  const watcher = watchForMarker(worktreesRoot, marker, o.worktree);
  try {
    const sent = now();
    const queued = (
      await callTool(client, 'new_task', {
        project: o.project,
        input: `write ${marker} started\nsay started`,
        ...(o.sessionId ? { session_id: o.sessionId } : {}),
        ...(o.chatId ? { chat_id: o.chatId } : {}),
      })
    ).structuredContent as { task_id: string; session_id: string; chat_id: string };
    const seenAt = await watcher.appeared;
    const end = (await callTool(client, 'get_task', { task_id: queued.task_id, wait_s: 30 }))
      .structuredContent as {
      state: string;
    };
    if (end.state !== 'completed') throw new Error(`task ${queued.task_id} ended ${end.state}`);
    return { ms: seenAt - sent, sessionId: queued.session_id, chatId: queued.chat_id };
  } finally {
    watcher.close();
  }
}

/** Fixture agent: per round a task in a new session, one in a new chat of it, and a follow-up. */
async function measureFixtureStarts(client: Client, worktreesRoot: string, project: string, runs: number) {
  const fresh: number[] = [];
  const newChat: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await sampleStart(client, worktreesRoot, { project, n: 3 * i });
    fresh.push(a.ms);
    const inSession = { sessionId: a.sessionId, worktree: a.sessionId };
    const b = await sampleStart(client, worktreesRoot, { project, n: 3 * i + 1, ...inSession });
    newChat.push(b.ms);
    const c = await sampleStart(client, worktreesRoot, {
      project,
      n: 3 * i + 2,
      ...inSession,
      chatId: b.chatId,
    });
    warm.push(c.ms);
  }
  return { fresh: distribution(fresh), newChat: distribution(newChat), warm: distribution(warm) };
}

const p50Row = (id: string, label: string, d: Distribution, peer?: { value: number; name: string }) =>
  ({
    id,
    label,
    unit: 'ms',
    boocoder: d.p50,
    peer: peer?.value ?? null,
    ...(peer ? { peerName: peer.name } : {}),
    detail: { ...d },
  }) satisfies Metric;

export const taskStartSuite: Suite = {
  name: 'task-start',
  description: 'new_task → the agent starts its turn: cold vs warm, fixture agent and real opencode',
  async run(ctx: BenchContext) {
    const runs = size(ctx, 10, 3);
    const bench = await createBenchDatabase(ctx.adminUrl, 'taskstart');
    const repo = await makeRepo('taskstart', [['README.md', '# bench\n']]);
    const home = await makeBenchHome();
    const model = await startScriptedModel();
    await writeAgentsConfig(home, model);
    const worktreesRoot = join(home, 'worktrees');
    await mkdir(worktreesRoot, { recursive: true });
    try {
      const serve = await startServe(home, { DATABASE_URL: bench.url });
      const client = await connectHttp(serve.url);
      try {
        // Untimed: fills the page cache and tsx's transform cache for the fixture agent.
        await runTaskToEnd(client, { project: repo, input: 'say warming up' });
        progress(`task-start: fixture agent, ${runs} rounds of new session / new chat / same chat`);
        const fixture = await measureFixtureStarts(client, worktreesRoot, repo, runs);
        progress(`task-start: real opencode, ${runs} rounds of new chat / same chat`);
        const opencode = await measureOpencodeStarts(client, model, repo, runs);
        const cold = distribution(opencode.cold);
        const warm = distribution(opencode.warm);
        return [
          p50Row(
            'task-start.cold.new-session.p50',
            'task start, cold, new session (fixture agent) p50',
            fixture.fresh,
          ),
          p50Row(
            'task-start.cold.new-chat.p50',
            'task start, cold, new chat (fixture agent) p50',
            fixture.newChat,
          ),
          p50Row(
            'task-start.warm.fixture.p50',
            'task start, warm, same chat (fixture agent) p50',
            fixture.warm,
            {
              value: fixture.newChat.p50,
              name: 'cold start, new chat',
            },
          ),
          p50Row('task-start.cold.opencode.p50', 'task start, cold, new chat (real opencode) p50', cold),
          {
            ...p50Row(
              'task-start.warm.opencode.p50',
              'task start, warm, same chat (real opencode) p50',
              warm,
              {
                value: cold.p50,
                name: 'cold start, real opencode',
              },
            ),
            target: { kind: 'ratio-max', value: 0.1 },
          },
        ];
      } finally {
        await client.close();
        await serve.stop();
      }
    } finally {
      await model.close();
      await removeHome(home);
      await removeHome(repo);
      await bench.drop();
    }
  },
};
