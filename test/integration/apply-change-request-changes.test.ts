/**
 * apply_change action=request_changes and restore through the real SDK client, on the embedded PostgreSQL and
 * PostgreSQL, with the ACP fixture agent: the change is rejected and a follow-up task queued in the
 * same chat (same worktree, the same warm agent process) with the comment, the file and its diff in
 * its prompt; the follow-up's change to that file supersedes the rejected one, recorded against the
 * original base, so it applies with no merge; a rejected change can be restored to pending.
 */
import { readFile } from 'node:fs/promises';
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

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  status: string;
}
interface TaskOut {
  state: string;
  chat_id: string;
  session_id: string;
  parent_task_id: string | null;
  input: string;
  output_summary: string | null;
}

const lines = (edits: Record<number, string> = {}) =>
  `${Array.from({ length: 12 }, (_, i) => edits[i + 1] ?? `line ${i + 1}`).join('\n')}\n`;
const escaped = (text: string) => text.replace(/\n/g, '\\n');

describeEachDatabase('apply_change request_changes', (ctx) => {
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

  const finished = (taskId: string) => callOk<TaskOut>(client, 'get_task', { task_id: taskId, wait_s: 55 });
  const changesOf = async (taskId: string) =>
    (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: taskId })).changes;

  it('sends a change back to its chat, and the follow-up’s change replaces it from the original base', async () => {
    const repo = await repos.repo({ 'a.txt': lines() });
    const first = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: `pid\nwrite a.txt ${escaped(lines({ 2: 'first try' }))}\nwrite b.txt b1`,
    });
    const firstDone = await finished(first.task_id);
    expect(firstDone.state).toBe('completed');
    const [a, b] = await changesOf(first.task_id);
    expect([a?.file_path, b?.file_path]).toEqual(['a.txt', 'b.txt']);

    expect(
      await callError(client, 'apply_change', { change_id: a?.change_id, action: 'request_changes' }),
    ).toMatch(/^E_INVALID_INPUT: request_changes needs a comment/);
    // The fixture agent runs the script lines of its prompt (lenient: it skips the rest of it).
    const comment = `Make line 2 say second try.\nlenient\npid\nwrite a.txt ${escaped(lines({ 2: 'second try' }))}`;
    const asked = await callOk<Change & { follow_up_task_id: string }>(client, 'apply_change', {
      change_id: a?.change_id,
      action: 'request_changes',
      comment,
    });
    expect(asked).toMatchObject({ change_id: a?.change_id, status: 'rejected' });

    const followUp = await finished(asked.follow_up_task_id);
    expect(followUp).toMatchObject({
      state: 'completed',
      chat_id: firstDone.chat_id,
      session_id: firstDone.session_id,
      parent_task_id: first.task_id,
    });
    expect(followUp.input).toContain("Reviewer's comment:\nMake line 2 say second try.");
    expect(followUp.input).toContain('File: a.txt (edit)');
    expect(followUp.input).toContain('+first try');
    // The same warm agent process ran both turns.
    const pidOf = (t: TaskOut) => /pid:(\d+)/.exec(t.output_summary ?? '')?.[1];
    expect(pidOf(followUp)).toBe(pidOf(firstDone));

    const [redone] = await changesOf(asked.follow_up_task_id);
    expect(redone).toMatchObject({ file_path: 'a.txt', operation: 'edit', status: 'pending' });
    const { rows } = await ctx.db.query<{
      id: string;
      base_oid: string;
      supersedes_id: string;
      diff: string;
    }>(
      'SELECT id, base_oid, supersedes_id, diff FROM pending_changes WHERE id = ANY($1::uuid[]) ORDER BY seq',
      [[a?.change_id, redone?.change_id]],
    );
    expect(rows[1]?.base_oid).toBe(rows[0]?.base_oid);
    expect(rows[1]?.supersedes_id).toBe(a?.change_id);
    expect(rows[1]?.diff).toContain('-line 2\n+second try');
    expect(rows[1]?.diff).not.toContain('first try');
    const { rows: review } = await ctx.db.query<{ review_comment: string; follow_up_task_id: string }>(
      'SELECT review_comment, follow_up_task_id FROM pending_changes WHERE id = $1',
      [a?.change_id],
    );
    expect(review[0]).toEqual({ review_comment: comment, follow_up_task_id: asked.follow_up_task_id });

    // Recorded against the original base: it applies to the untouched file with no merge.
    await callOk(client, 'apply_change', { change_id: redone?.change_id, action: 'apply' });
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe(lines({ 2: 'second try' }));
    const { rows: applied } = await ctx.db.query<{ merged_oid: string | null }>(
      'SELECT merged_oid FROM pending_changes WHERE id = $1',
      [redone?.change_id],
    );
    expect(applied[0]?.merged_oid).toBeNull();
  });

  it('restores a rejected change to pending, and refuses to restore one that is not rejected', async () => {
    const repo = await repos.repo({ 'c.txt': 'c\n' });
    const task = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'write c.txt c2',
    });
    expect((await finished(task.task_id)).state).toBe('completed');
    const [c] = await changesOf(task.task_id);
    expect(await callError(client, 'apply_change', { change_id: c?.change_id, action: 'restore' })).toMatch(
      /^E_CHANGE_NOT_PENDING: change .* is pending, so it cannot be restored/,
    );
    await callOk(client, 'apply_change', { change_id: c?.change_id, action: 'reject' });
    const restored = await callOk<Change>(client, 'apply_change', {
      change_id: c?.change_id,
      action: 'restore',
    });
    expect(restored.status).toBe('pending');
    await callOk(client, 'apply_change', { change_id: c?.change_id, action: 'apply' });
    expect(await readFile(join(repo, 'c.txt'), 'utf8')).toBe('c2');
  });
});
