/**
 * The `ask` permission policy through real MCP tools, a real dispatcher and the fixture agent's
 * `ask-permission` command, on PGlite and on PostgreSQL: a task blocks on the agent's request (it
 * shows in human_inbox and list_permission_requests, its lease is kept), answer_permission hands the
 * chosen option to the waiting agent, a second answer is refused, a cancel ends a blocked task, a
 * request the default policy refuses never reaches a human, and a shutdown expires the request and
 * hands the task back to the queue.
 *
 * Needs src/db/tasks.ts to treat `blocked` like `running` in renewLeases (and the related changes
 * listed with this feature): until then the heartbeat stops a blocked run as lease-lost.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createAgentTaskRunner } from '../../src/dispatcher/run-task.js';
import type { TaskRunner } from '../../src/dispatcher/task-runner.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
import { callError, callOk, connectHttpClient, testHome } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface TaskOut {
  task_id: string;
  session_id: string;
  state: string;
  output_summary: string | null;
  pending_changes: number;
  worktree_path: string | null;
}

interface RequestOut {
  request_id: string;
  task_id: string;
  session_id: string | null;
  agent: string;
  state: string;
  title: string | null;
  kind: string | null;
  locations: { path: string }[];
  options: { option_id: string; name: string; kind: string }[];
  chosen_option_id: string | null;
}

/** Polls until `check` holds; the test's timeout bounds the wait. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await delay(50);
}

describeEachDatabase('permission requests under the ask policy', (ctx) => {
  let home: string;
  let app: App;
  let http: RunningHttpServer;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  let stopping: Promise<void> | undefined;
  /** Stops the client, the endpoint and the app (its dispatcher hands unfinished tasks back). */
  const stopBoocoder = () => {
    stopping ??= (async () => {
      await client?.close();
      await http?.close();
      await app?.close();
    })();
    return stopping;
  };

  beforeAll(async () => {
    // A short lease: a blocked task lives through several heartbeats in every test.
    const test = await testHome({ BOOCODER_LEASE_MS: '1500', BOOCODER_POLL_MS: '200' });
    home = test.home;
    const config = loadConfig(test.env);
    const logger = createLogger(config.logLevel, { test: true });
    // The runner needs the app's deps, which exist only once the app started.
    let runner: TaskRunner | undefined;
    app = await startApp({
      config,
      logger,
      withDispatcher: true,
      db: ctx.db,
      runTask: (task, c) => (runner as TaskRunner)(task, c),
    });
    runner = createAgentTaskRunner(app.deps, { permissions: 'ask' });
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 20,
      sessionIdleMs: 60_000,
      logger,
      createMcpServer: () => createServer(app.deps),
    });
    client = await connectHttpClient(http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
  });

  afterAll(async () => {
    await stopBoocoder();
    if (home) await rm(home, { recursive: true, force: true });
    await repos?.cleanup();
  });

  const startBlockedTask = async (input: string) => {
    const queued = await callOk<TaskOut>(client, 'new_task', { project: repo, input });
    const blocked = await callOk<TaskOut>(client, 'get_task', { task_id: queued.task_id, wait_s: 50 });
    expect(blocked.state).toBe('blocked');
    const { requests } = await callOk<{ requests: RequestOut[] }>(client, 'list_permission_requests', {
      task_id: queued.task_id,
    });
    expect(requests).toHaveLength(1);
    return { task: blocked, request: requests[0] as RequestOut };
  };

  const taskRow = async (id: string) => {
    const { rows } = await ctx.db.query<{ state: string; lease_expires_at: Date }>(
      'SELECT state, lease_expires_at FROM tasks WHERE id = $1',
      [id],
    );
    return rows[0];
  };

  const requestState = async (id: string) => {
    const { rows } = await ctx.db.query<{ state: string }>(
      'SELECT state FROM permission_requests WHERE id = $1',
      [id],
    );
    return rows[0]?.state;
  };

  it('blocks the task until answer_permission, then the agent gets the chosen option and resumes', async () => {
    const { task, request } = await startBlockedTask('ask-permission\nwrite granted.txt yes');
    const worktree = task.worktree_path as string;
    expect(request).toMatchObject({
      task_id: task.task_id,
      session_id: task.session_id,
      agent: 'fixture',
      state: 'pending',
      title: 'write granted.txt',
      kind: 'edit',
      locations: [{ path: join(worktree, 'granted.txt') }],
      chosen_option_id: null,
    });
    expect(request.options.map((o) => [o.option_id, o.kind])).toEqual([
      ['always', 'allow_always'],
      ['once', 'allow_once'],
      ['reject', 'reject_once'],
    ]);
    const inbox = await ctx.db.query('SELECT id FROM human_inbox WHERE id = $1', [task.task_id]);
    expect(inbox.rows).toHaveLength(1);
    const bySession = await callOk<{ requests: RequestOut[] }>(client, 'list_permission_requests', {
      session_id: task.session_id,
    });
    expect(bySession.requests.map((r) => r.request_id)).toEqual([request.request_id]);

    // The dispatcher keeps the lease of the blocked task while the agent waits, and the agent has
    // not written anything yet.
    const blockedAt = (await taskRow(task.task_id))?.lease_expires_at as Date;
    await until(async () => {
      const row = await taskRow(task.task_id);
      expect(row?.state).toBe('blocked');
      return (row?.lease_expires_at as Date) > blockedAt;
    });
    expect(existsSync(join(worktree, 'granted.txt'))).toBe(false);

    const wrongOption = await callError(client, 'answer_permission', {
      request_id: request.request_id,
      option_id: 'sure',
    });
    expect(wrongOption).toMatch(/^E_INVALID_INPUT: .*"always", "once", "reject"/);

    const answered = await callOk<RequestOut & { task_resumed: boolean }>(client, 'answer_permission', {
      request_id: request.request_id,
      option_id: 'once',
    });
    expect(answered).toMatchObject({ state: 'answered', chosen_option_id: 'once', task_resumed: true });

    const done = await callOk<TaskOut>(client, 'get_task', { task_id: task.task_id, wait_s: 50 });
    expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
    expect(done.output_summary).toBe('permission:once\n');
    expect(await readFile(join(worktree, 'granted.txt'), 'utf8')).toBe('yes');
    const { changes } = await callOk<{ changes: { file_path: string; operation: string }[] }>(
      client,
      'list_pending_changes',
      { task_id: task.task_id },
    );
    expect(changes).toMatchObject([{ file_path: 'granted.txt', operation: 'create' }]);

    const twice = await callError(client, 'answer_permission', {
      request_id: request.request_id,
      option_id: 'reject',
    });
    expect(twice).toMatch(/^E_INVALID_INPUT: .*already answered \(option once\)/);
    const pending = await callOk<{ requests: RequestOut[] }>(client, 'list_permission_requests', {
      task_id: task.task_id,
    });
    expect(pending.requests).toEqual([]);
    const history = await callOk<{ requests: RequestOut[] }>(client, 'list_permission_requests', {
      task_id: task.task_id,
      state: 'answered',
    });
    expect(history.requests.map((r) => r.chosen_option_id)).toEqual(['once']);
  });

  it('hands a human’s rejection to the agent, which then writes nothing', async () => {
    const { task, request } = await startBlockedTask('ask-permission\nwrite refused.txt no');
    await callOk(client, 'answer_permission', { request_id: request.request_id, option_id: 'reject' });
    const done = await callOk<TaskOut>(client, 'get_task', { task_id: task.task_id, wait_s: 50 });
    expect(done).toMatchObject({
      state: 'completed',
      pending_changes: 0,
      output_summary: 'permission:reject\n',
    });
    expect(existsSync(join(task.worktree_path as string, 'refused.txt'))).toBe(false);
  });

  it('cancels a blocked task: the request is cancelled and the agent writes nothing', async () => {
    const { task, request } = await startBlockedTask('ask-permission\nwrite never.txt no');
    await callOk(client, 'cancel_task', { task_id: task.task_id });
    await until(async () => (await requestState(request.request_id)) !== 'pending');
    expect(await requestState(request.request_id)).toBe('cancelled');
    const done = await callOk<TaskOut>(client, 'get_task', { task_id: task.task_id, wait_s: 50 });
    expect(done.state).toBe('cancelled');
    expect(existsSync(join(task.worktree_path as string, 'never.txt'))).toBe(false);
    const late = await callError(client, 'answer_permission', {
      request_id: request.request_id,
      option_id: 'once',
    });
    expect(late).toMatch(/^E_INVALID_INPUT: .*cancelled/);
  });

  it('refuses a write outside the worktree by policy, without asking anyone', async () => {
    const queued = await callOk<TaskOut>(client, 'new_task', {
      project: repo,
      input: 'ask-permission\nwrite ../escaped.txt no',
    });
    const done = await callOk<TaskOut>(client, 'get_task', { task_id: queued.task_id, wait_s: 50 });
    expect(done).toMatchObject({ state: 'completed', output_summary: 'permission:reject\n' });
    expect(existsSync(join(dirname(done.worktree_path as string), 'escaped.txt'))).toBe(false);
    const { rows } = await ctx.db.query('SELECT id FROM permission_requests WHERE task_id = $1', [
      queued.task_id,
    ]);
    expect(rows).toEqual([]);
  });

  // Last: it stops this suite's boocoder.
  it('on shutdown expires the pending request and hands the blocked task back to the queue', async () => {
    const { task, request } = await startBlockedTask('ask-permission\nwrite later.txt no');
    await stopBoocoder();
    expect(await requestState(request.request_id)).toBe('expired');
    expect((await taskRow(task.task_id))?.state).toBe('pending');
    expect(existsSync(join(task.worktree_path as string, 'later.txt'))).toBe(false);
  });
});
