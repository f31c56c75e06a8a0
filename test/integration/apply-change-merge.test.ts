/**
 * apply_change when the user's file moved since the agent's base, through the real SDK client on
 * the embedded PostgreSQL and the server: a change that merges cleanly is applied as the three-way merge; a conflict
 * refuses the whole batch with the hunks shown and the repository byte-identical; revert puts back
 * exactly what the file held before the apply, and refuses once the file changed since.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
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
  status: string;
}

const lines = (edits: Record<number, string> = {}) =>
  `${Array.from({ length: 12 }, (_, i) => edits[i + 1] ?? `line ${i + 1}`).join('\n')}\n`;
/** The fixture agent's `write` takes its text on one line, with \n escapes. */
const escaped = (text: string) => text.replace(/\n/g, '\\n');

describeEachDatabase('apply_change merges when the base moved', (ctx) => {
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

  const changesOf = async (repo: string, input: string): Promise<Change[]> => {
    const queued = await callOk<{ task_id: string }>(client, 'new_task', { project: repo, input });
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    expect(done.state).toBe('completed');
    return (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: queued.task_id }))
      .changes;
  };

  it('applies a clean three-way merge, and revert restores exactly the user’s file', async () => {
    const repo = await repos.repo({ 'a.txt': lines() });
    const [change] = await changesOf(repo, `write a.txt ${escaped(lines({ 2: 'agent' }))}`);
    const mine = lines({ 11: 'mine' });
    await writeFile(join(repo, 'a.txt'), mine);
    const applied = await callOk<Change>(client, 'apply_change', {
      change_id: change?.change_id,
      action: 'apply',
    });
    expect(applied.status).toBe('applied');
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe(lines({ 2: 'agent', 11: 'mine' }));
    const { rows } = await ctx.db.query<{ prior_oid: string; merged_oid: string }>(
      'SELECT prior_oid, merged_oid FROM pending_changes WHERE id = $1',
      [change?.change_id],
    );
    expect(rows[0]).toEqual({
      prior_oid: blobOidOf(Buffer.from(mine)),
      merged_oid: blobOidOf(Buffer.from(lines({ 2: 'agent', 11: 'mine' }))),
    });
    await callOk(client, 'apply_change', { change_id: change?.change_id, action: 'revert' });
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe(mine);
  });

  it('refuses a conflicting batch with the hunks shown, writing nothing', async () => {
    const repo = await repos.repo({ 'b.txt': lines(), 'c.txt': 'c\n' });
    const changes = await changesOf(repo, `write b.txt ${escaped(lines({ 3: 'agent' }))}\nwrite c.txt c2`);
    await writeFile(join(repo, 'b.txt'), lines({ 3: 'mine' }));
    const before = await snapshot(repo);
    const text = await callError(client, 'apply_change', {
      change_ids: changes.map((c) => c.change_id),
      action: 'apply',
    });
    expect(text).toMatch(/^E_MERGE_CONFLICT: "b\.txt" changed since the agent's base/);
    expect(text).toContain(
      "<<<<<<< current file\nmine\n||||||| agent's base\nline 3\n=======\nagent\n>>>>>>> agent's change",
    );
    expect(await snapshot(repo)).toEqual(before);
    const { rows } = await ctx.db.query<{ status: string }>(
      'SELECT status FROM pending_changes WHERE id = ANY($1::uuid[])',
      [changes.map((c) => c.change_id)],
    );
    expect(rows.map((r) => r.status)).toEqual(['pending', 'pending']);
  });

  it('refuses to revert a merged change once the file changed since the apply', async () => {
    const repo = await repos.repo({ 'd.txt': lines() });
    const [change] = await changesOf(repo, `write d.txt ${escaped(lines({ 1: 'agent' }))}`);
    await writeFile(join(repo, 'd.txt'), lines({ 12: 'mine' }));
    await callOk(client, 'apply_change', { change_id: change?.change_id, action: 'apply' });
    await writeFile(join(repo, 'd.txt'), lines({ 1: 'agent', 6: 'later', 12: 'mine' }));
    const before = await snapshot(repo);
    const text = await callError(client, 'apply_change', { change_id: change?.change_id, action: 'revert' });
    expect(text).toMatch(/^E_BASE_MOVED: "d\.txt" changed since the change was applied/);
    expect(await snapshot(repo)).toEqual(before);
  });
});
