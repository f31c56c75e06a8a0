/**
 * PostgreSQL crashes (immediate shutdown) and restarts under a running boocoder, on a private
 * cluster of the test's own (the shared server on 5432 serves other test files meanwhile).
 *
 * An agent is mid-run, a task waits behind it and a client keeps queueing more. The outage lasts
 * until the run was fenced (its lease could not be renewed) and ended without being able to record
 * anything, so after the restart its task sits `running` under a lease that expires: the dispatcher
 * must hand it back and run it again, never two runs of one task at once, however long the fallback
 * poll. new_task must work again at once, and the LISTEN connection must be subscribed again: with
 * the poll ten minutes away, nothing but NOTIFY wakes an idle dispatcher.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createAgentTaskRunner } from '../../src/dispatcher/run-task.js';
import type { TaskRunner } from '../../src/dispatcher/task-runner.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
import { callOk, connectHttpClient, testHome } from '../helpers/boocoder-app.js';
import {
  type PrivatePostgres,
  privatePostgresProblem,
  startPrivatePostgres,
} from '../helpers/chaos-private-postgres.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { readTask } from '../helpers/chaos-tasks.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const LEASE_MS = 3000;
// Never ends by itself: the outage fences it, and after its second start a client cancels it.
const LONG_SCRIPT = 'write long.txt x\nsleep 600000';

interface Queued {
  task_id: string;
  chat_id: string;
}

interface Run {
  taskId: string;
  attempt: number;
  /** Another run of the same task had not ended when this one started. */
  overlapping: boolean;
}

/** Calls new_task in a loop, all in one chat, until stopped; records what each call got back. */
function keepQueueing(newTask: (input: string) => Promise<CallToolResult>) {
  const queued: string[] = [];
  const failures: string[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      const res = await newTask(`write queued-${n}.txt x\nsleep 200`).catch(
        (err: unknown): CallToolResult => ({ isError: true, content: [{ type: 'text', text: String(err) }] }),
      );
      const first = res.content[0];
      if (res.isError) failures.push(first?.type === 'text' ? first.text : '');
      else queued.push((res.structuredContent as unknown as Queued).task_id);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  return {
    queued,
    failures,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const noPrivateCluster = privatePostgresProblem !== undefined;

describe.skipIf(noPrivateCluster)('PostgreSQL crashed and restarted mid-run [private cluster]', () => {
  let cluster: PrivatePostgres | undefined;
  let repos: TempRepos;
  let home: string | undefined;
  let app: App | undefined;
  let http: RunningHttpServer | undefined;
  let client: Client | undefined;
  let queuer: ReturnType<typeof keepQueueing> | undefined;
  const logLines: string[] = [];
  const runs: Run[] = [];
  const active = new Set<string>();

  const logged = (msg: string, taskId: string) =>
    logLines
      .map((l) => JSON.parse(l) as { msg: string; taskId?: string })
      .filter((l) => l.msg === msg && l.taskId === taskId);

  beforeAll(async () => {
    cluster = await startPrivatePostgres();
    repos = tempRepos();
    const made = await testHome({
      DATABASE_URL: cluster.url(),
      BOOCODER_LEASE_MS: String(LEASE_MS),
      BOOCODER_POLL_MS: '600000',
    });
    home = made.home;
    // The real agent runner, watched: a run that starts while another run of its task has not ended.
    let agentRunner: TaskRunner | undefined;
    const runTask: TaskRunner = async (task, ctx) => {
      const run = { taskId: task.id, attempt: task.attempts, overlapping: active.has(task.id) };
      runs.push(run);
      active.add(task.id);
      try {
        if (!agentRunner) throw new Error('a task was claimed before the app was up');
        await agentRunner(task, ctx);
      } finally {
        if (!run.overlapping) active.delete(task.id);
      }
    };
    const logger = createLogger('debug', {}, (line) => logLines.push(line));
    app = await startApp({ config: loadConfig(made.env), logger, withDispatcher: true, runTask });
    agentRunner = createAgentTaskRunner(app.deps);
    const deps = app.deps;
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 5,
      sessionIdleMs: 60_000,
      logger,
      createMcpServer: () => createServer(deps),
    });
    client = await connectHttpClient(http.url);
  });

  afterAll(async () => {
    await queuer?.stop();
    await client?.close();
    await http?.close();
    await app?.close();
    await cluster?.destroy();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('runs the interrupted tasks again after the crash, serves new_task at once and LISTENs again', async () => {
    const c = client as Client;
    const pg = cluster as PrivatePostgres;
    const running = app as App;
    const db = running.deps.db;
    const repo = await repos.repo({ 'README.md': '# demo\n' });
    const newTask = (input: string, chatId?: string) =>
      callOk<Queued>(c, 'new_task', { project: repo, input, ...(chatId ? { chat_id: chatId } : {}) });

    const long = await newTask(LONG_SCRIPT);
    // Queued behind the long run in its chat: pending all through the outage.
    const behind = await newTask('write behind.txt x', long.chat_id);
    await waitFor('the long run to be asleep in its agent', async () => {
      const t = await readTask(db, long.task_id);
      return t.worktree_path && existsSync(join(t.worktree_path, 'long.txt'));
    });
    const q = keepQueueing(
      async (input) =>
        (await c.callTool({
          name: 'new_task',
          arguments: { project: repo, input, chat_id: long.chat_id },
        })) as CallToolResult,
    );
    queuer = q;

    await pg.stop({ mode: 'immediate' });
    // Down until every run that was going has ended (none can record it), and a client saw it.
    await waitFor(
      'the long run to be fenced',
      () => logged('lease not renewed in time; stopping the task', long.task_id).length === 1,
    );
    await waitFor('every run to end while the database is down', () => running.dispatcher?.activeCount === 0);
    await waitFor('a new_task call to fail', () => q.failures.length > 0);
    await pg.start();

    const afterRestart = await newTask('write after-restart.txt x', long.chat_id);
    await q.stop();
    for (const failure of q.failures) expect(failure).toMatch(/^E_DATABASE: cannot reach the database/);
    // The fenced run's lease expires and it runs again; the tasks behind it wait for its end.
    await waitFor('the long task to run again', async () => {
      const t = await readTask(db, long.task_id);
      return t.attempts === 2 && t.agent_pid !== null;
    });
    await callOk(c, 'cancel_task', { task_id: long.task_id });

    await waitFor(
      'every task to reach a final state',
      async () => {
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tasks WHERE state IN ('pending', 'running')`,
        );
        return rows[0]?.n === 0;
      },
      45_000,
    );
    // None lost: everything new_task accepted ran to completion. (A call that failed at the crash
    // may still have committed its task: that one must complete too.)
    const accepted = [long.task_id, behind.task_id, ...q.queued, afterRestart.task_id];
    const { rows: tasks } = await db.query<{ id: string; state: string }>('SELECT id, state FROM tasks');
    expect(tasks.filter((t) => t.state !== 'completed')).toEqual([{ id: long.task_id, state: 'cancelled' }]);
    expect(accepted.filter((id) => !tasks.some((t) => t.id === id))).toEqual([]);
    expect(runs.filter((r) => r.taskId === long.task_id).map((r) => r.attempt)).toEqual([1, 2]);
    expect(runs.filter((r) => r.overlapping)).toEqual([]);

    // An idle dispatcher and a poll ten minutes away: only the NOTIFY of this insert can start it.
    await waitFor('the dispatcher to be idle', () => running.dispatcher?.activeCount === 0);
    const listened = await newTask('write listened.txt x', long.chat_id);
    await waitFor(
      'the task queued after the restart to run',
      async () => (await readTask(db, listened.task_id)).state === 'completed',
    );
  });
});
