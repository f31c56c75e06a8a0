/**
 * A credential scoped to one running task, over the real HTTP endpoint with the SDK's client, on
 * both databases: its connection sees only the sub-task tools, queues children of its task in its
 * project (the fixture agent runs them and records their changes), reads only those children, and
 * is refused once its task has ended, when revoked, or when it is not one of ours.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface TaskView {
  task_id: string;
  state: string;
  project_id: string;
  parent_task_id: string | null;
  pending_changes: number;
}

describeEachDatabase('sub-tasks under a scoped credential', (ctx) => {
  let boo: TestBoocoder;
  let main: Client;
  let repos: TempRepos;
  let repo: string;
  let goFile: string;
  let parent: { task_id: string; project_id: string };
  let token: string;
  let scoped: Client | undefined;

  beforeAll(async () => {
    // Tight limits, so that the tests below reach them: one child per task, one level deep.
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_SUBTASK_MAX_CHILDREN: '1',
      BOOCODER_SUBTASK_MAX_DEPTH: '1',
    });
    main = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
    goFile = join(boo.home, 'parent-go');
    parent = await callOk(main, 'new_task', { project: repo, input: `wait-for ${goFile}` });
    // The parent's agent holds the turn open until the test says go: its credential is live.
    await waitRunning(parent.task_id);
    const scopes = boo.app.deps.subtaskScopes;
    if (!scopes) throw new Error('the app has no subtask scopes');
    token = scopes.mint({ taskId: parent.task_id, projectId: parent.project_id });
  });

  const waitRunning = async (taskId: string) => {
    for (;;) {
      const t = await callOk<TaskView>(main, 'get_task', { task_id: taskId });
      if (t.state === 'running') return;
      expect(t.state).toBe('pending');
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  afterAll(async () => {
    await scoped?.close();
    await main?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  it('sees only the sub-task tools', async () => {
    scoped = await connectHttpClient(boo.http.url, token);
    const { tools } = await scoped.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'get_task',
      'list_pending_changes',
      'list_tasks',
      'new_task',
    ]);
    const err = await scoped.callTool({ name: 'apply_change', arguments: {} }).then(
      (r) => JSON.stringify(r),
      (e: unknown) => String(e),
    );
    expect(err).toMatch(/apply_change/);
    expect(err).toMatch(/not found/i);
  });

  it('queues a child of its task in its project, which runs and records its change', async () => {
    if (!scoped) throw new Error('no scoped client');
    const child = await callOk<{ task_id: string; parent_task_id: string }>(scoped, 'new_task', {
      input: 'write child.txt from the child',
    });
    expect(child.parent_task_id).toBe(parent.task_id);
    const done = await callOk<TaskView>(scoped, 'get_task', { task_id: child.task_id, wait_s: 50 });
    expect(done.state).toBe('completed');
    expect(done.pending_changes).toBe(1);
    // The full view agrees: same project, parent recorded in the row.
    const seen = await callOk<TaskView>(main, 'get_task', { task_id: child.task_id });
    expect(seen.project_id).toBe(parent.project_id);
    expect(seen.parent_task_id).toBe(parent.task_id);
    // The full tools show the family too: get_task lists children, list_tasks filters by parent.
    const parentView = await callOk<{ children: Array<{ task_id: string; state: string }> }>(
      main,
      'get_task',
      {
        task_id: parent.task_id,
      },
    );
    expect(parentView.children).toEqual([{ task_id: child.task_id, state: 'completed', agent: 'fixture' }]);
    const byParent = await callOk<{ tasks: TaskView[] }>(main, 'list_tasks', {
      parent_task_id: parent.task_id,
    });
    expect(byParent.tasks.map((t) => t.task_id)).toEqual([child.task_id]);
    // Fan-out: one child per task here (BOOCODER_SUBTASK_MAX_CHILDREN=1).
    expect(await callError(scoped, 'new_task', { input: 'say again' })).toMatch(
      /^E_TOO_MANY_TASKS.*BOOCODER_SUBTASK_MAX_CHILDREN/,
    );
    const listed = await callOk<{ tasks: TaskView[] }>(scoped, 'list_tasks', {});
    expect(listed.tasks.map((t) => t.task_id)).toEqual([child.task_id]);
    const changes = await callOk<{ changes: Array<{ file_path: string; task_id: string }> }>(
      scoped,
      'list_pending_changes',
      { task_id: child.task_id },
    );
    expect(changes.changes.map((c) => c.file_path)).toEqual(['child.txt']);
  });

  it('reads no task that is not its child', async () => {
    if (!scoped) throw new Error('no scoped client');
    const other = await callOk<{ task_id: string }>(main, 'new_task', { project: repo, input: 'say hi' });
    expect(await callError(scoped, 'get_task', { task_id: other.task_id })).toMatch(/^E_TASK_NOT_FOUND/);
    expect(await callError(scoped, 'get_task', { task_id: parent.task_id })).toMatch(/^E_TASK_NOT_FOUND/);
    expect(await callError(scoped, 'list_pending_changes', { task_id: other.task_id })).toMatch(
      /^E_TASK_NOT_FOUND/,
    );
  });

  it('refuses a token that is not one we minted', async () => {
    await expect(connectHttpClient(boo.http.url, `boosub_${'A'.repeat(43)}`)).rejects.toThrow(
      /401|unauthorized/i,
    );
  });

  it('is refused once its task has ended', async () => {
    await writeFile(goFile, 'go');
    const done = await callOk<TaskView>(main, 'get_task', { task_id: parent.task_id, wait_s: 50 });
    expect(done.state).toBe('completed');
    if (!scoped) throw new Error('no scoped client');
    await expect(scoped.callTool({ name: 'list_tasks', arguments: {} })).rejects.toThrow(/401|unauthorized/i);
    await expect(connectHttpClient(boo.http.url, token)).rejects.toThrow(/401|unauthorized/i);
  });

  it('is refused once revoked', async () => {
    const scopes = boo.app.deps.subtaskScopes;
    if (!scopes) throw new Error('the app has no subtask scopes');
    const again = scopes.mint({ taskId: parent.task_id, projectId: parent.project_id });
    scopes.revoke(parent.task_id);
    expect(scopes.resolve(again)).toBeUndefined();
    await expect(connectHttpClient(boo.http.url, again)).rejects.toThrow(/401|unauthorized/i);
  });

  it('cancelling a task cancels its sub-tasks and ends its credential', async () => {
    const scopes = boo.app.deps.subtaskScopes;
    if (!scopes) throw new Error('the app has no subtask scopes');
    const never = join(boo.home, 'never');
    const p2 = await callOk<{ task_id: string; project_id: string }>(main, 'new_task', {
      project: repo,
      input: `wait-for ${never}`,
    });
    await waitRunning(p2.task_id);
    const t2 = scopes.mint({ taskId: p2.task_id, projectId: p2.project_id });
    const c2 = await connectHttpClient(boo.http.url, t2);
    try {
      const child = await callOk<{ task_id: string }>(c2, 'new_task', { input: `wait-for ${never}` });
      await waitRunning(child.task_id);
      // Depth: a child may not queue grandchildren here (BOOCODER_SUBTASK_MAX_DEPTH=1).
      const childToken = scopes.mint({ taskId: child.task_id, projectId: p2.project_id });
      const c3 = await connectHttpClient(boo.http.url, childToken);
      try {
        expect(await callError(c3, 'new_task', { input: 'say deeper' })).toMatch(
          /^E_TOO_MANY_TASKS.*BOOCODER_SUBTASK_MAX_DEPTH/,
        );
      } finally {
        await c3.close();
      }
      await callOk(main, 'cancel_task', { task_id: p2.task_id });
      const childDone = await callOk<TaskView>(main, 'get_task', { task_id: child.task_id, wait_s: 50 });
      expect(childDone.state).toBe('cancelled');
      const parentDone = await callOk<TaskView>(main, 'get_task', { task_id: p2.task_id, wait_s: 50 });
      expect(parentDone.state).toBe('cancelled');
      await expect(c2.callTool({ name: 'list_tasks', arguments: {} })).rejects.toThrow(/401|unauthorized/i);
    } finally {
      await c2.close();
    }
  });
});
