/**
 * What `serve` logs per task at `info`, on both databases: one line when a task's agent starts and
 * one when it ends, with the agent, execution path, duration, changes, tokens, cost and error code.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { queueTask, waitForTask } from '../../src/services/tasks.js';
import { testHome } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('task log lines', (ctx) => {
  let app: App;
  let home: string;
  let repos: TempRepos;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const test = await testHome();
    home = test.home;
    const logger = createLogger('info', {}, (line) =>
      lines.push(JSON.parse(line) as Record<string, unknown>),
    );
    app = await startApp({ config: loadConfig(test.env), logger, withDispatcher: true, db: ctx.db });
    repos = tempRepos();
  });

  afterAll(async () => {
    await app?.close();
    await repos?.cleanup();
    await rm(home, { recursive: true, force: true });
  });

  it('logs a task start and its end with what it cost', async () => {
    const repo = await repos.repo();
    const { task } = await queueTask(
      app.deps,
      { project: repo, input: 'write a.txt hi\nusage 100 20 0.5' },
      async () => [],
    );
    expect((await waitForTask(app.deps, task.id, 50)).task.state).toBe('completed');
    const mine = lines.filter((l) => l.taskId === task.id);
    expect(mine.find((l) => l.msg === 'task started')).toMatchObject({
      level: 'info',
      agent: 'fixture',
      path: 'acp',
    });
    expect(mine.find((l) => l.msg === 'task ended')).toMatchObject({
      level: 'info',
      agent: 'fixture',
      path: 'acp',
      state: 'completed',
      durationMs: expect.any(Number),
      changes: 1,
      inputTokens: 100,
      outputTokens: 20,
      cost: 0.5,
      currency: 'USD',
      errorCode: null,
    });
  });
});
