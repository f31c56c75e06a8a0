/**
 * The `ask` permission policy on the `opencode serve` backend, end to end: a REAL opencode serve
 * (scripted model server) configured to ask before editing, a real dispatcher, and the MCP tools.
 * An edit request blocks the task (human_inbox, list_permission_requests); answer_permission
 * `once` lets opencode write the file and the task completes, `reject` leaves no file, and a
 * cancel ends a blocked task. Assertions are on the worktree's files and the recorded rows.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { opencodeAgentConfig, settledTask, type TaskView, useAgentBoocoder } from '../helpers/agent-e2e.js';
import { callError, callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

/** Real agents start slowly on a loaded CI machine: bounds, not timing assertions. */
const TEST_TIMEOUT_MS = 400_000;

interface TaskOut extends TaskView {
  task_id: string;
  worktree_path: string | null;
}

interface RequestOut {
  request_id: string;
  task_id: string;
  agent: string;
  state: string;
  title: string | null;
  kind: string | null;
  locations: { path: string }[];
  options: { option_id: string; name: string; kind: string }[];
}

describeEachDatabase('the ask policy on the opencode serve backend', (ctx) => {
  const e = useAgentBoocoder(
    ctx,
    {
      models: { perUserTurn: true },
      config: (models) => ({
        defaultAgent: 'opencode',
        opencodeBackend: 'serve',
        permissions: 'ask',
        // opencode itself asks before editing or running a command.
        agents: { opencode: opencodeAgentConfig(models.baseUrl, { edit: 'ask', bash: 'ask' }) },
      }),
      env: { BOOCODER_TASK_TIMEOUT_MS: '300000' },
    },
    TEST_TIMEOUT_MS,
  );

  /** Waits (get_task's long poll, repeated) until the task left pending/running. */
  const settled = (taskId: string) => settledTask<TaskOut>(e.client, taskId);

  const startBlockedTask = async (input: string) => {
    const queued = await callOk<TaskOut>(e.client, 'new_task', { project: e.repo, input });
    const blocked = await settled(queued.task_id);
    expect(blocked.state).toBe('blocked');
    const { requests } = await callOk<{ requests: RequestOut[] }>(e.client, 'list_permission_requests', {
      task_id: queued.task_id,
    });
    expect(requests).toHaveLength(1);
    return { task: blocked, request: requests[0] as RequestOut, worktree: blocked.worktree_path as string };
  };

  const requestState = async (id: string) => {
    const { rows } = await ctx.db.query<{ state: string }>(
      'SELECT state FROM permission_requests WHERE id = $1',
      [id],
    );
    return rows[0]?.state;
  };

  it(
    'blocks on opencode’s edit request; allowed once, opencode writes the file and the task completes',
    async () => {
      const { task, request, worktree } = await startBlockedTask('create allowed.txt with content yes');
      expect(request).toMatchObject({
        agent: 'opencode',
        state: 'pending',
        kind: 'edit',
        title: 'edit: allowed.txt',
        locations: [{ path: join(worktree, 'allowed.txt') }, { path: 'allowed.txt' }],
      });
      expect(request.options.map((o) => [o.option_id, o.kind])).toEqual([
        ['once', 'allow_once'],
        ['reject', 'reject_once'],
      ]);
      const inbox = await ctx.db.query('SELECT id FROM human_inbox WHERE id = $1', [task.task_id]);
      expect(inbox.rows).toHaveLength(1);
      expect(existsSync(join(worktree, 'allowed.txt'))).toBe(false);

      const answered = await callOk<{ task_resumed: boolean }>(e.client, 'answer_permission', {
        request_id: request.request_id,
        option_id: 'once',
      });
      expect(answered.task_resumed).toBe(true);
      const done = await settled(task.task_id);
      expect(done).toMatchObject({ state: 'completed', error: null, pending_changes: 1 });
      expect(await readFile(join(worktree, 'allowed.txt'), 'utf8')).toBe('yes');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'hands a rejection to opencode, which writes nothing; the task completes without changes',
    async () => {
      const { task, request, worktree } = await startBlockedTask('create refused.txt with content no');
      await callOk(e.client, 'answer_permission', { request_id: request.request_id, option_id: 'reject' });
      const done = await settled(task.task_id);
      expect(done).toMatchObject({ state: 'completed', error: null, pending_changes: 0 });
      expect(existsSync(join(worktree, 'refused.txt'))).toBe(false);
      expect(await requestState(request.request_id)).toBe('answered');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'cancels a blocked task: the request is cancelled, opencode writes nothing, a late answer is refused',
    async () => {
      const { task, request, worktree } = await startBlockedTask('create never.txt with content no');
      await callOk(e.client, 'cancel_task', { task_id: task.task_id });
      // `blocked` ends get_task's wait too: first the gate closes the request, then the run ends.
      while ((await requestState(request.request_id)) === 'pending') await delay(50);
      const done = await settled(task.task_id);
      expect(done.state).toBe('cancelled');
      expect(await requestState(request.request_id)).toBe('cancelled');
      expect(existsSync(join(worktree, 'never.txt'))).toBe(false);
      const late = await callError(e.client, 'answer_permission', {
        request_id: request.request_id,
        option_id: 'once',
      });
      expect(late).toMatch(/^E_INVALID_INPUT: /);
      // The shared server took the cancel in its stride: the next task runs on it.
      const { request: next, task: nextTask } = await startBlockedTask('create later.txt with content ok');
      await callOk(e.client, 'answer_permission', { request_id: next.request_id, option_id: 'once' });
      expect((await settled(nextTask.task_id)).state).toBe('completed');
    },
    TEST_TIMEOUT_MS,
  );

  it('left the model server nothing unscripted', () => {
    expect(e.models.unhandled).toEqual([]);
  });
});
