/**
 * SIGTERM to a `boocoder serve` process on PostgreSQL while an agent runs: it shuts down gracefully
 * (exit code 0) after the grace period, stops the agent's whole process group, and hands the task
 * back to the queue with its lease released and its attempt unspent. (The embedded-database run
 * of the same scenario is in embedded-db-killed.test.ts, which already has a serve to stop.)
 */
import { rm } from 'node:fs/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOk, connectHttpClient, testHome } from '../helpers/boocoder-app.js';
import {
  groupMembers,
  killGroups,
  killProcess,
  type RunningProcess,
  startServe,
} from '../helpers/chaos-processes.js';
import { sigtermAndCheckRequeued, waitForAgentMidRun } from '../helpers/chaos-serve-scenarios.js';
import { databaseBackends, isPostgresAvailable, type TestDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

describe.skipIf(!isPostgresAvailable())('SIGTERM of boocoder serve mid-run [pg]', () => {
  let testDb: TestDatabase;
  let repos: TempRepos;
  let home: string | undefined;
  let serve: (RunningProcess & { url: string }) | undefined;
  let client: Client | undefined;
  const groups: number[] = [];

  beforeAll(async () => {
    const pg = databaseBackends().find((b) => b.name === 'pg');
    testDb = await (pg as NonNullable<typeof pg>).create();
    repos = tempRepos();
  });

  afterAll(async () => {
    await client?.close().catch(() => {});
    await killProcess(serve);
    killGroups(groups);
    await testDb?.close();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('stops the agent, releases the lease and requeues the task with its attempt unspent', async () => {
    const repo = await repos.repo({ 'README.md': '# demo\n' });
    const made = await testHome({
      BOOCODER_SHUTDOWN_GRACE_MS: '1000',
      DATABASE_URL: testDb.connectionString as string,
    });
    home = made.home;
    serve = await startServe(made.env, home);
    client = await connectHttpClient(serve.url);
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'append log.txt x\nspawn-child\nwrite started.txt y\nsleep 60000',
    });
    const group = await waitForAgentMidRun(client, serve.pid, queued.task_id, 'started.txt');
    groups.push(group);
    expect(groupMembers(group).length).toBeGreaterThanOrEqual(2);
    await client.close();
    client = undefined;
    await sigtermAndCheckRequeued(serve, home, queued.task_id, group, async () => testDb.db);
  }, 120_000);
});
