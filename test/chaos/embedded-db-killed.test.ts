/**
 * The embedded database (the PostgreSQL a `boocoder serve` process runs): a kill -9 of that process
 * mid-run loses no committed task. The postmaster outlives it; the restarted serve adopts it, finds
 * both tasks (the running one and the one queued behind it), takes the running one
 * over once its lease has expired (killing the agent the dead process left behind) and runs both.
 * Then SIGTERM of that serve: graceful, the task requeued with its attempt unspent, and the
 * postmaster stopped with it.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { isProcessAlive, readPostmasterPid } from '../../src/db/embedded-postgres-process.js';
import { openDatabase } from '../../src/db/open.js';
import { silentLogger } from '../../src/log.js';
import { callOk, connectHttpClient, testHome } from '../helpers/boocoder-app.js';
import {
  groupMembers,
  killGroups,
  killProcess,
  type RunningProcess,
  startServe,
} from '../helpers/chaos-processes.js';
import { sigtermAndCheckRequeued, waitForAgentMidRun } from '../helpers/chaos-serve-scenarios.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface TaskView {
  task_id: string;
  session_id: string;
  state: string;
  attempts: number;
  error_code: string | null;
  last_error?: string;
}

interface ChangeView {
  file_path: string;
  operation: string;
  diff: string;
}

/** Whether the embedded PostgreSQL of `home` (BOOCODER_PG_DIR = home/pg in testHome) is running. */
function postmasterRunning(home: string): boolean {
  const pid = readPostmasterPid(join(home, 'pg', 'data'));
  return pid !== undefined && isProcessAlive(pid);
}

describe('the embedded database, its owner killed with -9 [embedded PostgreSQL]', () => {
  let repos: TempRepos;
  let repo: string;
  let home: string;
  let env: Record<string, string>;
  let serve: (RunningProcess & { url: string }) | undefined;
  let client: Client | undefined;
  let db: Db | undefined;
  const groups: number[] = [];

  beforeAll(async () => {
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
    ({ home, env } = await testHome({
      // Longer than the other chaos leases: this serve shares two CPUs with the rest of the suite and
      // the restart takes longer than the lease anyway.
      BOOCODER_LEASE_MS: '5000',
      BOOCODER_POLL_MS: '300',
      BOOCODER_SHUTDOWN_GRACE_MS: '1000',
    }));
  });

  afterAll(async () => {
    await client?.close().catch(() => {});
    await killProcess(serve);
    killGroups(groups);
    await db?.close();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  async function startServing(): Promise<Client> {
    await client?.close().catch(() => {});
    serve = await startServe(env, home);
    client = await connectHttpClient(serve.url);
    return client;
  }

  it('loses no committed task and kills the orphaned agent after a restart', async () => {
    let c = await startServing();
    const running = await callOk<TaskView>(c, 'new_task', {
      project: repo,
      input: 'append log.txt x\nspawn-child\nwrite started.txt y\nsleep 3000\nwrite done.txt ok',
    });
    const queued = await callOk<TaskView>(c, 'new_task', {
      project: repo,
      input: 'write second.txt z',
      session_id: running.session_id,
    });
    const orphan = await waitForAgentMidRun(c, (serve as RunningProcess).pid, running.task_id, 'started.txt');
    groups.push(orphan);

    (serve as RunningProcess).child.kill('SIGKILL');
    expect(await (serve as RunningProcess).exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(groupMembers(orphan).length).toBeGreaterThanOrEqual(1);
    // The database outlived its owner; the next serve adopts it.
    expect(postmasterRunning(home)).toBe(true);

    c = await startServing();
    const first = await callOk<TaskView>(c, 'get_task', { task_id: running.task_id, wait_s: 50 });
    // The error fields are compared too, so a failure says why the task failed.
    expect({ ...first, last_error: first.last_error ?? null }).toMatchObject({
      state: 'completed',
      attempts: 2,
      error_code: null,
      last_error: null,
    });
    const second = await callOk<TaskView>(c, 'get_task', { task_id: queued.task_id, wait_s: 50 });
    expect(second).toMatchObject({ state: 'completed', attempts: 1 });
    expect(groupMembers(orphan)).toEqual([]);

    const { changes } = await callOk<{ changes: ChangeView[] }>(c, 'list_pending_changes', {
      task_id: running.task_id,
    });
    expect(changes.map((ch) => `${ch.operation}:${ch.file_path}`).sort()).toEqual([
      'create:done.txt',
      'create:log.txt',
      'create:started.txt',
    ]);
    expect(changes.find((ch) => ch.file_path === 'log.txt')?.diff).toMatch(/^\+x$/m);
  }, 240_000);

  it('on SIGTERM stops the agent and requeues its task with the attempt unspent', async () => {
    if (!client || !serve) throw new Error('the previous test left no serve running');
    const c = client;
    const queued = await callOk<TaskView>(c, 'new_task', {
      project: repo,
      input: 'append log2.txt x\nspawn-child\nwrite started2.txt y\nsleep 60000',
    });
    const group = await waitForAgentMidRun(c, (serve as RunningProcess).pid, queued.task_id, 'started2.txt');
    groups.push(group);
    expect(groupMembers(group).length).toBeGreaterThanOrEqual(2);
    await c.close();
    client = undefined;
    await sigtermAndCheckRequeued(serve as RunningProcess, home, queued.task_id, group, async () => {
      // The adopting serve stopped the database with itself.
      expect(postmasterRunning(home)).toBe(false);
      db = await openDatabase({ home, pgDir: join(home, 'pg'), logger: silentLogger });
      return db;
    });
  }, 240_000);
});
