/**
 * A project lives on one machine: two boocoder servers with different machine ids share one
 * database. Each claims only its own projects' tasks, refuses new_task with a path and apply_change
 * for the other's projects (naming the owning machine, before touching any local path), cleans up
 * only its own worktrees, and adopts a project from before machine ownership that it finds here.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findProject, upsertProject } from '../../src/db/projects.js';
import { listActiveWorktreesUnder } from '../../src/db/worktrees.js';
import { silentLogger } from '../../src/log.js';
import { adoptLocalProjects } from '../../src/services/project-machine.js';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('machine ownership', (ctx) => {
  let a: TestBoocoder;
  let b: TestBoocoder;
  let clientA: Client;
  let clientB: Client;
  let repos: TempRepos;

  beforeAll(async () => {
    a = await startTestBoocoder(ctx.db, { BOOCODER_MACHINE_ID: 'machine-a' });
    b = await startTestBoocoder(ctx.db, { BOOCODER_MACHINE_ID: 'machine-b' });
    clientA = await connectHttpClient(a.http.url);
    clientB = await connectHttpClient(b.http.url);
    repos = tempRepos();
  });

  afterAll(async () => {
    await clientA?.close();
    await clientB?.close();
    await a?.close();
    await b?.close();
    await repos?.cleanup();
  });

  it("runs a project's tasks only on its machine and refuses the other machine's new_task and apply_change", async () => {
    const repo = await repos.repo({ 'a.txt': 'one\n' });
    const first = await callOk<{ task_id: string; project_id: string }>(clientA, 'new_task', {
      project: repo,
      input: 'write a.txt two',
    });
    const project = await findProject(ctx.db, first.project_id);
    expect(project?.machineId).toBe('machine-a');

    const refused = await callError(clientB, 'new_task', { project: repo, input: 'write b.txt x' });
    expect(refused).toMatch(/E_PROJECT_ON_OTHER_MACHINE/);
    expect(refused).toContain('machine-a');

    // Queued by id from machine B: fine, but only machine A's dispatcher runs it.
    const byId = await callOk<{ task_id: string }>(clientB, 'new_task', {
      project: first.project_id,
      input: 'write c.txt three',
    });
    for (const id of [first.task_id, byId.task_id]) {
      const done = await callOk<{ state: string }>(clientB, 'get_task', { task_id: id, wait_s: 55 });
      expect(done.state).toBe('completed');
      const { rows } = await ctx.db.query<{ worktree_path: string }>(
        'SELECT worktree_path FROM tasks WHERE id = $1',
        [id],
      );
      expect(rows[0]?.worktree_path.startsWith(join(a.home, 'worktrees'))).toBe(true);
    }

    const { changes } = await callOk<{ changes: { change_id: string }[] }>(clientA, 'list_pending_changes', {
      task_id: first.task_id,
    });
    const ids = changes.map((c) => c.change_id);
    const applyB = await callError(clientB, 'apply_change', { change_ids: ids, action: 'apply' });
    expect(applyB).toMatch(/E_PROJECT_ON_OTHER_MACHINE/);
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe('one\n');
    await callOk(clientA, 'apply_change', { change_ids: ids, action: 'apply' });
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe('two');

    // Worktree clean-up on B does not see A's worktree rows.
    const mine = await listActiveWorktreesUnder(ctx.db, '/', 'machine-b');
    const theirs = await listActiveWorktreesUnder(ctx.db, '/', 'machine-a');
    expect(mine).toEqual([]);
    expect(theirs.length).toBeGreaterThan(0);
  });

  it('refuses a path recorded on another machine without looking at the local path', async () => {
    const elsewhere = join(a.home, 'not-here', 'repo');
    await upsertProject(ctx.db, elsewhere, 'repo', { id: 'machine-a', name: 'host-a' });
    const refused = await callError(clientB, 'new_task', { project: elsewhere, input: 'noop' });
    // Not E_NOT_A_GIT_REPO: the folder does not exist here, and it was never looked at.
    expect(refused).toMatch(/E_PROJECT_ON_OTHER_MACHINE/);
    expect(refused).toContain('host-a');
    expect(existsSync(elsewhere)).toBe(false);
  });

  it('adopts a project from before machine ownership when its repository is found here', async () => {
    const repo = await repos.repo({ 'r.txt': 'r\n' });
    const missing = join(b.home, 'gone-repo');
    const legacy = await upsertProject(ctx.db, repo, 'legacy');
    const lost = await upsertProject(ctx.db, missing, 'lost');
    expect(legacy.machineId).toBeNull();
    await adoptLocalProjects(ctx.db, b.config.machine, silentLogger);
    expect((await findProject(ctx.db, legacy.id))?.machineId).toBe('machine-b');
    // Not found here: left for the machine that has it.
    expect((await findProject(ctx.db, lost.id))?.machineId).toBeNull();
    // Adopted once: machine A finding it too changes nothing.
    await adoptLocalProjects(ctx.db, a.config.machine, silentLogger);
    expect((await findProject(ctx.db, legacy.id))?.machineId).toBe('machine-b');
  });
});
