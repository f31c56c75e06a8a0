/**
 * The shared flow of the real-agent end-to-end tests. startAgentBoocoder starts a real boocoder
 * (app, dispatcher, HTTP endpoint) whose config file runs real agents against the scripted model
 * server, with a fake user home, a temp repository and a real MCP client. The rest drives tasks
 * through the MCP tools as a client would: new_task → get_task(wait) → list_pending_changes →
 * apply_change → get_agent_sessions, asserting on the changes' diffs and the repository's files.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Db } from '../../src/db/db.js';
import {
  type ModelServer,
  type ModelServerOptions,
  startModelServer,
} from '../fixtures/model-server/model-server.js';
import { processesWorkingIn } from './agents-real-gemini.js';
import {
  type FakeUserHome,
  fakeUserHome,
  OPENCODE_BIN,
  type OpencodePermission,
  opencodeEnv,
} from './agents-real-opencode.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from './boocoder-app.js';
import type { DatabaseTestContext } from './databases.js';
import { snapshot, type TempRepos, tempRepos } from './worktrees-temp-repo.js';

export interface AgentBoocoderOptions {
  /** The boocoder config file's content (agents, defaultAgent, backends...) for this model server. */
  config: (models: ModelServer) => Record<string, unknown>;
  /** More env for boocoder (PATH, timeouts); HOME is the fake user's, BOOCODER_CONFIG the file above. */
  env?: Record<string, string>;
  models?: ModelServerOptions;
  /** The files of the repository's one commit (default: a README.md). */
  files?: Record<string, string>;
}

export interface AgentBoocoder {
  boo: TestBoocoder;
  client: Client;
  models: ModelServer;
  user: FakeUserHome;
  /** The fake user's home before boocoder started: to prove that no agent wrote there. */
  userBefore: Map<string, string>;
  repos: TempRepos;
  repo: string;
  /** Closes the client, boocoder and the model server, and removes the temp folders. */
  cleanup(): Promise<void>;
}

export async function startAgentBoocoder(db: Db, options: AgentBoocoderOptions): Promise<AgentBoocoder> {
  const repos = tempRepos();
  let models: ModelServer | undefined;
  let user: FakeUserHome | undefined;
  let boo: TestBoocoder | undefined;
  let client: Client | undefined;
  const cleanup = async () => {
    await client?.close();
    await boo?.close();
    await models?.close();
    await repos.cleanup();
    await user?.cleanup();
  };
  try {
    models = await startModelServer(options.models);
    user = await fakeUserHome();
    const userBefore = await snapshot(user.path);
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(configFile, JSON.stringify(options.config(models)));
    boo = await startTestBoocoder(db, {
      // The flows check that each chat's agent stays warm; three real agents (500-800 MB each)
      // would pass the default memory cap and one would be closed. The cap has its own test.
      BOOCODER_MAX_WARM_AGENT_MEMORY_MB: '0',
      ...options.env,
      // The "user" whose login agent-env links in: never the real home of whoever runs the tests.
      HOME: user.path,
      BOOCODER_CONFIG: configFile,
    });
    client = await connectHttpClient(boo.http.url);
    const repo = await repos.repo(options.files);
    return { boo, client, models, user, userBefore, repos, repo, cleanup };
  } catch (err) {
    // A half-started set-up leaves nothing behind (the suite's afterAll has no handle to close),
    // and the set-up's own error is the one reported.
    await cleanup().catch(() => undefined);
    throw err;
  }
}

/**
 * Registers the suite's beforeAll (startAgentBoocoder on the suite's database) and afterAll
 * (cleanup). The handle it returns is filled in by beforeAll: read it inside tests and hooks.
 * `options` may be a function, for set-up that must come first (installing an opt-in agent).
 */
export function useAgentBoocoder(
  ctx: DatabaseTestContext,
  options: AgentBoocoderOptions | (() => Promise<AgentBoocoderOptions>),
  hookTimeoutMs?: number,
): AgentBoocoder {
  const handle = {} as AgentBoocoder;
  let started: AgentBoocoder | undefined;
  beforeAll(async () => {
    started = await startAgentBoocoder(ctx.db, typeof options === 'function' ? await options() : options);
    Object.assign(handle, started);
  }, hookTimeoutMs);
  afterAll(() => started?.cleanup());
  return handle;
}

/** The config-file entry (config.agents.opencode) for the real opencode over ACP. */
export function opencodeAgentConfig(
  baseUrl: string,
  permission?: OpencodePermission,
): Record<string, unknown> {
  return { command: OPENCODE_BIN, args: ['acp'], env: opencodeEnv(baseUrl, permission) };
}

export interface Queued {
  task_id: string;
  session_id: string;
  chat_id: string;
}

export interface TaskView {
  state: string;
  error: string | null;
  pending_changes: number;
}

export interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  agent: string;
  diff: string;
}

/**
 * get_task with wait, again while the task is still queued or running: real agents starting at once
 * on a busy CI machine can take longer than one wait (55 s at most). The test's timeout bounds it.
 * It returns on `blocked` too.
 */
export async function settledTask<T extends TaskView = TaskView>(client: Client, taskId: string): Promise<T> {
  for (;;) {
    const task = await callOk<T>(client, 'get_task', { task_id: taskId, wait_s: 55 });
    if (task.state !== 'pending' && task.state !== 'running') return task;
  }
}

/** new_task with these arguments, then get_task until it settled. */
export async function runTaskToEnd(
  client: Client,
  args: Record<string, unknown>,
): Promise<{ queued: Queued; done: TaskView }> {
  const queued = await callOk<Queued>(client, 'new_task', args);
  return { queued, done: await settledTask(client, queued.task_id) };
}

/** Queues every task first (so they run side by side), then waits for each to settle. */
export async function runTasksToEnd(
  client: Client,
  tasks: Record<string, unknown>[],
): Promise<{ queued: Queued; done: TaskView }[]> {
  const queued = await Promise.all(tasks.map((args) => callOk<Queued>(client, 'new_task', args)));
  return Promise.all(queued.map(async (q) => ({ queued: q, done: await settledTask(client, q.task_id) })));
}

/** The new_task arguments that continue an earlier task's session and chat. */
export function followUp(previous: Queued): { session_id: string; chat_id: string } {
  return { session_id: previous.session_id, chat_id: previous.chat_id };
}

export async function changesOf(
  client: Client,
  filter: { task_id: string } | { session_id: string },
): Promise<Change[]> {
  return (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', filter)).changes;
}

/** apply_change on each change in turn; every one must be applied. */
export async function applyAll(client: Client, changes: { change_id: string }[]): Promise<void> {
  for (const c of changes) {
    const applied = await callOk(client, 'apply_change', { change_id: c.change_id, action: 'apply' });
    expect(applied).toMatchObject({ status: 'applied' });
  }
}

export async function agentSessionsOf<T = Record<string, unknown>>(
  client: Client,
  sessionId: string,
): Promise<T[]> {
  return (await callOk<{ agent_sessions: T[] }>(client, 'get_agent_sessions', { session_id: sessionId }))
    .agent_sessions;
}

/** The one agent session a chat's tasks ran in (get_agent_sessions must list exactly one). */
export async function soleAgentSessionOf<T = Record<string, unknown>>(
  client: Client,
  sessionId: string,
): Promise<T> {
  const sessions = await agentSessionsOf<T>(client, sessionId);
  expect(sessions).toHaveLength(1);
  return sessions[0] as T;
}

/**
 * Closes the warm agent sessions (agents stay warm for follow-ups in their chat): that must end
 * every agent process and every tool it ran, none left working in boocoder's home.
 */
export async function closeWarmAgents(e: AgentBoocoder): Promise<void> {
  await e.boo.app.deps.warmSessions?.closeAll();
  expect(processesWorkingIn(e.boo.home)).toEqual([]);
}

/** The repository of the create / edit / delete flow. */
export const CRUD_FILES: Record<string, string> = { 'README.md': '# demo\n', 'old.txt': 'to be deleted\n' };

/** Its three prompts, in the order applyCrudChanges expects their tasks. */
export function crudPrompts(agent: string): string[] {
  return [
    `Please create hello.txt with content hi from ${agent}`,
    `Please edit README.md: replace # demo with # demo by ${agent}`,
    'Please delete old.txt',
  ];
}

/**
 * Runs the create / edit / delete tasks side by side in `e.repo` (made from CRUD_FILES), with these
 * more new_task arguments: each completes with one pending change, the model server was asked
 * nothing unscripted, and the repository is untouched until the changes are applied.
 */
export async function runCrudTasks(
  e: AgentBoocoder,
  agent: string,
  args: Record<string, unknown>,
): Promise<Queued[]> {
  const before = await snapshot(e.repo);
  const runs = await runTasksToEnd(
    e.client,
    crudPrompts(agent).map((input) => ({ project: e.repo, input, ...args })),
  );
  // Anything the agent asked for that the scripted server does not serve would be a silent fallback.
  expect(e.models.unhandled).toEqual([]);
  for (const { done } of runs)
    expect(done).toMatchObject({ state: 'completed', error: null, pending_changes: 1 });
  expect(await snapshot(e.repo)).toEqual(before);
  return runs.map((r) => r.queued);
}

/**
 * The create / edit / delete tasks' pending changes, exactly one file each (the agent's own state
 * stayed out of the worktree) with its diff; then applies them and checks the repository. `hello`
 * is hello.txt as the agent writes it.
 */
export async function applyCrudChanges(
  e: AgentBoocoder,
  agent: string,
  tasks: Queued[],
  hello: string,
): Promise<void> {
  const { client, repo } = e;
  const [created, edited, deleted] = await Promise.all(
    tasks.map((q) => changesOf(client, { task_id: q.task_id })),
  );
  expect(created?.map((c) => [c.operation, c.file_path, c.agent])).toEqual([['create', 'hello.txt', agent]]);
  expect(created?.[0]?.diff).toContain(`+hi from ${agent}`);
  expect(edited?.map((c) => [c.operation, c.file_path, c.agent])).toEqual([['edit', 'README.md', agent]]);
  expect(edited?.[0]?.diff).toContain('-# demo\n');
  expect(edited?.[0]?.diff).toContain(`+# demo by ${agent}`);
  expect(deleted?.map((c) => [c.operation, c.file_path, c.agent])).toEqual([['delete', 'old.txt', agent]]);
  expect(deleted?.[0]?.diff).toContain('-to be deleted');

  await applyAll(client, [...(created ?? []), ...(edited ?? []), ...(deleted ?? [])]);
  expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe(hello);
  expect(await readFile(join(repo, 'README.md'), 'utf8')).toBe(`# demo by ${agent}\n`);
  await expect(stat(join(repo, 'old.txt'))).rejects.toThrow(/ENOENT/);
}
