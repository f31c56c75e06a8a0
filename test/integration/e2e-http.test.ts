/**
 * The whole flow through a real MCP client over streamable HTTP, on PGlite and on PostgreSQL:
 * new_task → get_task(wait) → list_pending_changes → apply_change, plus reject, revert, cancel,
 * follow-up tasks in one session, and clear errors for bad arguments.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  status: string;
  agent: string;
  diff: string;
  diff_uri: string;
  task_id: string;
}

describeEachDatabase('end to end over HTTP', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n', 'old.txt': 'to be deleted\n', 'src/a.txt': 'a\n' });
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const runTask = async (input: string, extra: Record<string, unknown> = {}) => {
    const queued = await callOk<{ task_id: string; session_id: string; chat_id: string; state: string }>(
      client,
      'new_task',
      {
        project: repo,
        input,
        ...extra,
      },
    );
    // Running when this process's dispatcher had a free slot (claimed by the INSERT), else pending.
    expect(['pending', 'running']).toContain(queued.state);
    const done = await callOk<{
      state: string;
      pending_changes: number;
      finished: boolean;
      error: string | null;
    }>(client, 'get_task', { task_id: queued.task_id, wait_s: 50 });
    return { queued, done };
  };

  it('lists the tools with their schemas', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual([
      'answer_permission',
      'apply_change',
      'cancel_task',
      'decide_arena',
      'get_agent_sessions',
      'get_arena',
      'get_task',
      'get_transcript',
      'get_usage',
      'list_arenas',
      'list_inbox',
      'list_pending_changes',
      'list_permission_requests',
      'list_tasks',
      'new_arena',
      'new_task',
      'probe_agents',
    ]);
    for (const t of tools) expect(t.outputSchema, t.name).toBeDefined();
    expect(tools.find((t) => t.name === 'apply_change')?.annotations?.destructiveHint).toBe(true);
    expect(tools.find((t) => t.name === 'list_pending_changes')?.annotations?.readOnlyHint).toBe(true);
  });

  it('runs a task, records its per-file changes, and applies, reverts and rejects them', async () => {
    const before = await snapshot(repo);
    const { queued, done } = await runTask(
      'write hello.txt hi there\nappend README.md more\ndelete old.txt\nusage 10 5 0.25',
    );
    expect(done).toMatchObject({ state: 'completed', pending_changes: 3, finished: true });
    expect(await snapshot(repo)).toEqual(before);

    const { changes } = await callOk<{ changes: Change[] }>(client, 'list_pending_changes', {
      task_id: queued.task_id,
    });
    const byPath = Object.fromEntries(changes.map((c) => [c.file_path, c]));
    expect(Object.keys(byPath).sort()).toEqual(['README.md', 'hello.txt', 'old.txt']);
    expect(byPath['hello.txt']).toMatchObject({ operation: 'create', status: 'pending', agent: 'fixture' });
    expect(byPath['hello.txt']?.diff).toContain('+hi there');
    expect(byPath['README.md']).toMatchObject({ operation: 'edit' });
    expect(byPath['README.md']?.diff).toContain('+more');
    expect(byPath['old.txt']).toMatchObject({ operation: 'delete' });

    const full = await client.readResource({ uri: byPath['hello.txt']?.diff_uri as string });
    expect(JSON.stringify(full.contents[0])).toContain('+hi there');

    for (const c of changes) {
      expect(await callOk(client, 'apply_change', { change_id: c.change_id, action: 'apply' })).toMatchObject(
        { status: 'applied' },
      );
    }
    expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe('hi there');
    expect(await readFile(join(repo, 'README.md'), 'utf8')).toBe('# demo\nmore');
    await expect(readFile(join(repo, 'old.txt'))).rejects.toThrow(/ENOENT/);

    const again = await callError(client, 'apply_change', {
      change_id: byPath['hello.txt']?.change_id,
      action: 'apply',
    });
    expect(again).toMatch(/^E_CHANGE_NOT_PENDING: .*revert/);

    for (const c of changes)
      await callOk(client, 'apply_change', { change_id: c.change_id, action: 'revert' });
    expect(await snapshot(repo)).toEqual(before);
    await callOk(client, 'apply_change', { change_id: byPath['old.txt']?.change_id, action: 'reject' });
    const rejected = await callOk<{ changes: Change[] }>(client, 'list_pending_changes', {
      task_id: queued.task_id,
      status: 'rejected',
    });
    expect(rejected.changes.map((c) => c.file_path)).toEqual(['old.txt']);

    const sessions = await callOk<{ agent_sessions: Record<string, unknown>[] }>(
      client,
      'get_agent_sessions',
      {
        session_id: queued.session_id,
      },
    );
    expect(sessions.agent_sessions).toHaveLength(1);
    expect(sessions.agent_sessions[0]).toMatchObject({
      agent: 'fixture',
      status: 'idle',
      has_session: true,
      input_tokens: 10,
      output_tokens: 5,
      cost: 0.25,
    });
  });

  it('records only its own changes for a follow-up task in the same session', async () => {
    const first = await runTask('write notes/one.txt 1');
    const second = await runTask('write notes/two.txt 2\nappend notes/one.txt +', {
      session_id: first.queued.session_id,
    });
    expect(second.done.state).toBe('completed');
    const { changes } = await callOk<{ changes: Change[] }>(client, 'list_pending_changes', {
      task_id: second.queued.task_id,
    });
    expect(changes.map((c) => `${c.operation}:${c.file_path}`).sort()).toEqual([
      'create:notes/two.txt',
      'edit:notes/one.txt',
    ]);
    // The edit is on top of the first task's file: applying it before the first is refused, untouched repo.
    const edit = changes.find((c) => c.file_path === 'notes/one.txt') as Change;
    const before = await snapshot(repo);
    expect(await callError(client, 'apply_change', { change_id: edit.change_id, action: 'apply' })).toMatch(
      /^E_BASE_MOVED/,
    );
    expect(await snapshot(repo)).toEqual(before);
  });

  it('refuses to apply over a file that changed since the agent started and does not merge, leaving the repository unchanged', async () => {
    const { queued } = await runTask('append src/a.txt from agent');
    const [change] = (
      await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: queued.task_id })
    ).changes;
    await writeFile(join(repo, 'src/a.txt'), 'a\nedited by the user\n');
    const before = await snapshot(repo);
    const err = await callError(client, 'apply_change', { change_id: change?.change_id, action: 'apply' });
    // Both appended after the same line: the three-way merge conflicts.
    expect(err).toMatch(/^E_MERGE_CONFLICT: /);
    expect(await snapshot(repo)).toEqual(before);
    await writeFile(join(repo, 'src/a.txt'), 'a\n');
  });

  it('lets exactly one of two concurrent applies of one change win', async () => {
    const { queued } = await runTask('write race.txt x');
    const [change] = (
      await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: queued.task_id })
    ).changes;
    const results = await Promise.all(
      [1, 2].map(() =>
        client.callTool({
          name: 'apply_change',
          arguments: { change_id: change?.change_id, action: 'apply' },
        }),
      ),
    );
    expect(results.filter((r) => !r.isError)).toHaveLength(1);
    expect(await readFile(join(repo, 'race.txt'), 'utf8')).toBe('x');
    await callOk(client, 'apply_change', { change_id: change?.change_id, action: 'revert' });
  });

  it('cancels a running task and kills its agent', async () => {
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'pid\nwrite partial.txt p\nsleep 60000',
    });
    // Cancel once the agent has written its file and is sleeping.
    for (let i = 0; i < 400; i++) {
      const t = await callOk<{ worktree_path: string | null }>(client, 'get_task', {
        task_id: queued.task_id,
      });
      if (t.worktree_path && existsSync(join(t.worktree_path, 'partial.txt'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await callOk(client, 'cancel_task', { task_id: queued.task_id })).toMatchObject({
      cancel_requested: true,
    });
    const done = await callOk<{ state: string; pending_changes: number; output_summary: string | null }>(
      client,
      'get_task',
      {
        task_id: queued.task_id,
        wait_s: 30,
      },
    );
    expect(done.state).toBe('cancelled');
    expect(done.pending_changes).toBe(1);
    const pid = Number(/pid:(\d+)/.exec(done.output_summary ?? '')?.[1]);
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(await callError(client, 'cancel_task', { task_id: queued.task_id })).toMatch(
      /^E_TASK_NOT_CANCELLABLE/,
    );
  });

  it('cancels a pending task at once', async () => {
    const blocker = await callOk<{ task_id: string; session_id: string }>(client, 'new_task', {
      project: repo,
      input: 'sleep 60000',
    });
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'write never.txt n',
      session_id: blocker.session_id,
    });
    const cancelled = await callOk<{ state: string }>(client, 'cancel_task', { task_id: queued.task_id });
    expect(cancelled.state).toBe('cancelled');
    await callOk(client, 'cancel_task', { task_id: blocker.task_id });
    expect(
      (await callOk<{ state: string }>(client, 'get_task', { task_id: blocker.task_id, wait_s: 30 })).state,
    ).toBe('cancelled');
  });

  it('fails a task whose agent fails, with the reason', async () => {
    const { done } = await runTask('fail the model refused');
    expect(done.state).toBe('failed');
    expect(done.error).toBeTruthy();
  });

  it('pages list_tasks', async () => {
    const page1 = await callOk<{ tasks: unknown[]; next_cursor: string | null }>(client, 'list_tasks', {
      limit: 2,
    });
    expect(page1.tasks).toHaveLength(2);
    expect(page1.next_cursor).toBeTruthy();
    const page2 = await callOk<{ tasks: { task_id: string }[] }>(client, 'list_tasks', {
      limit: 2,
      cursor: page1.next_cursor,
    });
    expect(page2.tasks.length).toBeGreaterThan(0);
  });

  describe('bad arguments get clear errors', () => {
    it('names the bad field', async () => {
      expect(await callError(client, 'apply_change', { change_id: 'nope', action: 'apply' })).toMatch(
        /change_id/,
      );
      expect(
        await callError(client, 'apply_change', {
          change_id: '00000000-0000-4000-8000-000000000000',
          action: 'explode',
        }),
      ).toMatch(/action must be one of apply, reject, revert/);
      expect(await callError(client, 'new_task', { project: 'relative/path', input: 'x' })).toMatch(
        /^E_INVALID_INPUT/,
      );
      expect(await callError(client, 'new_task', { project: await repos.dir(), input: 'x' })).toMatch(
        /^E_NOT_A_GIT_REPO/,
      );
      expect(
        await callError(client, 'new_task', { project: repo, input: 'x', agent: 'no-such-agent' }),
      ).toMatch(/^E_AGENT_NOT_FOUND/);
      expect(await callError(client, 'new_task', { project: repo, input: 'x', agent: ';rm -rf /' })).toMatch(
        /agent/,
      );
      expect(
        await callError(client, 'get_task', { task_id: '00000000-0000-4000-8000-000000000000' }),
      ).toMatch(/^E_TASK_NOT_FOUND/);
      expect(await callError(client, 'list_pending_changes', { cursor: 'bogus' })).toMatch(
        /^E_INVALID_INPUT: cursor/,
      );
    });
  });
});
