/**
 * A registered project whose repository folder was moved away (or deleted), through the real MCP
 * tools on PGlite and PostgreSQL: apply, batch apply and revert answer E_PROJECT_MISSING (not
 * E_INTERNAL) with a message that says what to do and names no host path, new_task by project id
 * is refused at once, a task already queued fails in the dispatcher with the same code, and
 * reject still works.
 */
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findProject } from '../../src/db/projects.js';
import { prepareSessionWorktree } from '../../src/dispatcher/session-worktree.js';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('a project whose folder is gone', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const expectMissing = (text: string, repo: string) => {
    expect(text).toMatch(/^E_PROJECT_MISSING/);
    expect(text).toMatch(/moved or deleted/);
    expect(text).toMatch(/action=reject/);
    expect(text).not.toContain(repo);
    expect(text).not.toContain(boo.home);
  };

  it('apply, batch apply, revert and new_task by id say so; reject still works', async () => {
    const repo = await repos.repo({ 'a.txt': 'a1\n', 'b.txt': 'b1\n' });
    const queued = await callOk<{ task_id: string; project_id: string; session_id: string }>(
      client,
      'new_task',
      {
        project: repo,
        input: 'write a.txt a2\nwrite b.txt b2\nwrite c.txt c',
      },
    );
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    expect(done.state).toBe('completed');
    const { changes } = await callOk<{ changes: { change_id: string; file_path: string }[] }>(
      client,
      'list_pending_changes',
      { task_id: queued.task_id },
    );
    const byPath = new Map(changes.map((c) => [c.file_path, c.change_id]));
    const [a, b, c] = ['a.txt', 'b.txt', 'c.txt'].map((p) => byPath.get(p) as string);
    await callOk(client, 'apply_change', { change_id: c, action: 'apply' });

    const moved = `${repo}-moved`;
    await rename(repo, moved);
    try {
      expectMissing(await callError(client, 'apply_change', { change_id: a, action: 'apply' }), repo);
      expectMissing(await callError(client, 'apply_change', { change_ids: [a, b], action: 'apply' }), repo);
      expectMissing(await callError(client, 'apply_change', { change_id: c, action: 'revert' }), repo);
      expectMissing(
        await callError(client, 'new_task', { project: queued.project_id, input: 'write d.txt d' }),
        repo,
      );
      const { rows } = await ctx.db.query<{ id: string; status: string }>(
        'SELECT id, status FROM pending_changes WHERE id = ANY($1::uuid[]) ORDER BY file_path',
        [[a, b, c]],
      );
      expect(rows.map((r) => r.status)).toEqual(['pending', 'pending', 'applied']);

      const rejected = await callOk<{ status: string }>(client, 'apply_change', {
        change_id: a,
        action: 'reject',
      });
      expect(rejected.status).toBe('rejected');

      // A task already queued when the folder went fails in the dispatcher with the same code.
      const project = await findProject(ctx.db, queued.project_id);
      if (!project) throw new Error('no project row');
      const start = prepareSessionWorktree(
        boo.app.deps.db,
        project,
        queued.session_id,
        join(boo.home, 'worktrees'),
        boo.app.deps.config.machine.id,
      );
      await expect(start).rejects.toMatchObject({ code: 'E_PROJECT_MISSING' });
    } finally {
      await rename(moved, repo).catch(() => rm(moved, { recursive: true, force: true }));
    }
  });
});
