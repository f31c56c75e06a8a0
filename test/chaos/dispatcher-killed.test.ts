/**
 * kill -9 of a dispatcher process while its agent runs. The agent's process group outlives it (the
 * fixture's `spawn-child` ignores SIGTERM, as a real agent's tool process may). Once the lease
 * expires a second dispatcher takes the task over: it kills the orphaned group first, the new
 * attempt starts from a reset worktree, and exactly one attempt's changes become pending changes.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { testHome } from '../helpers/boocoder-app.js';
import {
  groupMembers,
  killGroups,
  killProcess,
  type RunningProcess,
  startTsxScript,
  waitFor,
  waitForReady,
} from '../helpers/chaos-processes.js';
import { changesOf, insertSessionFor, queueAgentTask, readTask } from '../helpers/chaos-tasks.js';
import { databaseBackends, isPostgresAvailable, type TestDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const DISPATCHER_FIXTURE = fileURLToPath(new URL('../fixtures/chaos-dispatcher.ts', import.meta.url));
// Attempt 1 is killed while it sleeps; attempt 2 runs it all. The append shows a reset worktree.
const SCRIPT = 'append log.txt x\nspawn-child\nwrite started.txt y\nsleep 3000\nwrite done.txt ok';

describe.skipIf(!isPostgresAvailable())('a dispatcher process killed with -9 mid-run [pg]', () => {
  let testDb: TestDatabase;
  let repos: TempRepos;
  let home: string;
  let first: RunningProcess | undefined;
  let secondDb: Db | undefined;
  let second: App | undefined;
  const groups: number[] = [];

  beforeAll(async () => {
    const pg = databaseBackends().find((b) => b.name === 'pg');
    testDb = await (pg as NonNullable<typeof pg>).create();
    repos = tempRepos();
  });

  afterAll(async () => {
    await second?.close();
    await secondDb?.close();
    await killProcess(first);
    killGroups(groups);
    await testDb?.close();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('reclaims the task after the lease, kills the orphaned agent and records one attempt', async () => {
    const db = testDb.db;
    const repo = await repos.repo({ 'README.md': '# demo\n' });
    const made = await testHome({
      DATABASE_URL: testDb.connectionString as string,
      BOOCODER_LEASE_MS: '2000',
      BOOCODER_POLL_MS: '300',
    });
    home = made.home;
    first = startTsxScript(DISPATCHER_FIXTURE, { ...made.env, CHAOS_RUNNER: 'agent' });
    await waitForReady(first);
    const taskId = await queueAgentTask(db, await insertSessionFor(db, repo), SCRIPT);

    const running = await waitFor('attempt 1 to be mid-run', async () => {
      const t = await readTask(db, taskId);
      return t.agent_pid && t.worktree_path && existsSync(join(t.worktree_path, 'started.txt'))
        ? t
        : undefined;
    });
    const orphanGroup = running.agent_pid as number;
    groups.push(orphanGroup);
    expect(running).toMatchObject({ state: 'running', attempts: 1 });
    expect(groupMembers(orphanGroup).length).toBeGreaterThanOrEqual(2);

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // The precondition of everything below: the agent's group outlived its dispatcher.
    expect(groupMembers(orphanGroup).length).toBeGreaterThanOrEqual(1);

    const logLines: string[] = [];
    const config = loadConfig(made.env);
    secondDb = createPgDb({ connectionString: testDb.connectionString as string, logger: silentLogger });
    second = await startApp({
      config,
      logger: createLogger('info', {}, (line) => logLines.push(line)),
      withDispatcher: true,
      db: secondDb,
    });

    const done = await waitFor('attempt 2 to finish', async () => {
      const t = await readTask(db, taskId);
      return t.state !== 'running' && t.state !== 'pending' ? t : undefined;
    });
    expect(done).toMatchObject({ state: 'completed', attempts: 2, lease_owner: null });
    groups.push(done.agent_pid as number);
    expect(done.agent_pid).not.toBe(orphanGroup);

    // The orphan was killed by the dispatcher that took the lease over, and nothing is left of either
    // run once the second attempt's agent, kept warm for its chat, is closed.
    expect(groupMembers(orphanGroup)).toEqual([]);
    await second.deps.warmSessions?.closeAll();
    expect(groupMembers(done.agent_pid as number)).toEqual([]);
    const killedLog = logLines
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'killed the agent of an expired lease');
    expect(killedLog).toMatchObject({ taskId, pgid: orphanGroup });

    // One attempt's changes: attempt 1's append was reset away before attempt 2 appended again.
    expect(await changesOf(db, taskId)).toEqual(['create:done.txt', 'create:log.txt', 'create:started.txt']);
    expect(await readFile(join(done.worktree_path as string, 'log.txt'), 'utf8')).toBe('x');
    const { rows } = await db.query<{ diff: string }>(
      `SELECT diff FROM pending_changes WHERE task_id = $1 AND file_path = 'log.txt'`,
      [taskId],
    );
    expect(rows[0]?.diff).toMatch(/^\+x$/m);
  }, 120_000);
});
