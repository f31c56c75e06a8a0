/**
 * The review features with the REAL opencode over ACP, on both databases (the ACP fixture agent's
 * tests cover the edge cases; these prove the real agent's runs fit them): a replayed request_id
 * answers with the first task and runs opencode once; request_changes queues a follow-up in the
 * same chat whose change supersedes the rejected one and applies with no merge; apply merges a
 * file the user edited elsewhere and refuses a conflict leaving the repository byte-identical; a
 * token budget opencode's reported usage passes fails the task with E_BUDGET_EXCEEDED at the
 * turn's end (opencode over ACP reports usage only then), keeping the file it wrote.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { lastChatUserText } from '../fixtures/model-server/chat-wire.js';
import { FINAL_TEXT } from '../fixtures/model-server/model-server.js';
import {
  changesOf,
  opencodeAgentConfig,
  type Queued,
  runTaskToEnd,
  settledTask,
  type TaskView,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { callError, callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

/** Distinct words, so that opencode's edit finds exactly one match for each. */
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
const text = (edits: Record<string, string> = {}) => `${WORDS.map((w) => edits[w] ?? w).join('\n')}\n`;

interface TaskOut extends TaskView {
  chat_id: string;
  session_id: string;
  parent_task_id: string | null;
  error_code: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  max_tokens: number | null;
}

describeEachDatabase('the real opencode under review: retries, request_changes, merges, budgets', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({
      defaultAgent: 'opencode',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '120000' },
    // A follow-up in the same opencode session carries the first turn's tool results in its history.
    models: { perUserTurn: true },
  });

  /** Turn requests (tools offered) that began a turn on this prompt: one per opencode run. */
  const turnsStartedOn = (marker: string) =>
    e.models.requests.filter((r) => {
      const messages = (r.body as { messages?: { role: string }[] }).messages ?? [];
      return (
        r.toolNames.length > 0 &&
        lastChatUserText(r.body as Parameters<typeof lastChatUserText>[0]).includes(marker) &&
        !messages.some((m) => m.role === 'tool')
      );
    }).length;

  it('answers a retried new_task with the first task, and opencode runs once', async () => {
    const repo = await e.repos.repo({ 'README.md': '# demo\n' });
    const args = {
      project: repo,
      input: 'Please create retried.txt with content once',
      request_id: 'retry-1',
    };
    const first = await callOk<Queued & { replayed: boolean }>(e.client, 'new_task', args);
    expect(first.replayed).toBe(false);
    // A retry while the task is queued or running, and one after it ended.
    const early = await callOk<Queued & { replayed: boolean }>(e.client, 'new_task', args);
    const done = await settledTask(e.client, first.task_id);
    expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
    const late = await callOk<Queued & { replayed: boolean }>(e.client, 'new_task', {
      ...args,
      input: 'Please create other.txt with content twice',
    });
    for (const again of [early, late])
      expect(again).toMatchObject({ task_id: first.task_id, replayed: true });

    const { rows } = await ctx.db.query<{ id: string }>('SELECT id FROM tasks WHERE request_id = $1', [
      'retry-1',
    ]);
    expect(rows.map((r) => r.id)).toEqual([first.task_id]);
    // The model server saw one run of the prompt, and none of the retry's other prompt.
    expect(turnsStartedOn('create retried.txt')).toBe(1);
    expect(turnsStartedOn('create other.txt')).toBe(0);
    const changes = await changesOf(e.client, { task_id: first.task_id });
    expect(changes.map((c) => [c.operation, c.file_path])).toEqual([['create', 'retried.txt']]);
  }, 400_000);

  it('sends a change back with request_changes; the follow-up in the same chat supersedes it', async () => {
    const repo = await e.repos.repo({ 'a.txt': text() });
    const { queued, done } = await runTaskToEnd(e.client, {
      project: repo,
      input: 'Please edit a.txt: replace bravo with first try',
    });
    expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
    const [rejected] = await changesOf(e.client, { task_id: queued.task_id });
    expect(rejected).toMatchObject({ operation: 'edit', file_path: 'a.txt' });

    const comment = 'Please edit a.txt: replace first try with second try';
    const asked = await callOk<{ status: string; follow_up_task_id: string }>(e.client, 'apply_change', {
      change_id: rejected?.change_id,
      action: 'request_changes',
      comment,
    });
    expect(asked.status).toBe('rejected');
    const followUp = await settledTask<TaskOut>(e.client, asked.follow_up_task_id);
    expect(followUp).toMatchObject({
      state: 'completed',
      chat_id: queued.chat_id,
      session_id: queued.session_id,
      parent_task_id: queued.task_id,
    });
    expect(e.models.unhandled).toEqual([]);

    const [redone] = await changesOf(e.client, { task_id: asked.follow_up_task_id });
    expect(redone).toMatchObject({ operation: 'edit', file_path: 'a.txt' });
    const { rows } = await ctx.db.query<{
      id: string;
      status: string;
      base_oid: string;
      supersedes_id: string | null;
    }>(
      'SELECT id, status, base_oid, supersedes_id FROM pending_changes WHERE id = ANY($1::uuid[]) ORDER BY seq',
      [[rejected?.change_id, redone?.change_id]],
    );
    expect(rows.map((r) => r.status)).toEqual(['rejected', 'pending']);
    expect(rows[1]?.supersedes_id).toBe(rejected?.change_id);
    expect(rows[1]?.base_oid).toBe(rows[0]?.base_oid);
    // Its diff runs from the user's file, not from the rejected attempt.
    expect(redone?.diff).toContain('-bravo\n+second try');
    expect(redone?.diff).not.toContain('first try');

    await callOk(e.client, 'apply_change', { change_id: redone?.change_id, action: 'apply' });
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe(text({ bravo: 'second try' }));
    const { rows: applied } = await ctx.db.query<{ status: string; merged_oid: string | null }>(
      'SELECT status, merged_oid FROM pending_changes WHERE id = $1',
      [redone?.change_id],
    );
    expect(applied[0]).toEqual({ status: 'applied', merged_oid: null });
  }, 600_000);

  it('applies a clean three-way merge of the user’s edit and refuses a conflict, writing nothing', async () => {
    const repo = await e.repos.repo({ 'm.txt': text(), 'c.txt': text() });
    const [merging, conflicting] = await Promise.all(
      [
        'Please edit m.txt: replace bravo with agent wrote this',
        'Please edit c.txt: replace charlie with agent wrote this',
      ].map(async (input) => {
        const { queued, done } = await runTaskToEnd(e.client, { project: repo, input });
        expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
        const [change] = await changesOf(e.client, { task_id: queued.task_id });
        return change;
      }),
    );
    expect(e.models.unhandled).toEqual([]);

    // The user edits another part of m.txt after the agent's base: the apply writes both.
    await writeFile(join(repo, 'm.txt'), text({ india: 'user wrote this' }));
    const applied = await callOk<{ status: string }>(e.client, 'apply_change', {
      change_id: merging?.change_id,
      action: 'apply',
    });
    expect(applied.status).toBe('applied');
    expect(await readFile(join(repo, 'm.txt'), 'utf8')).toBe(
      text({ bravo: 'agent wrote this', india: 'user wrote this' }),
    );
    const { rows } = await ctx.db.query<{ merged_oid: string | null }>(
      'SELECT merged_oid FROM pending_changes WHERE id = $1',
      [merging?.change_id],
    );
    expect(rows[0]?.merged_oid).not.toBeNull();

    // The user edits the very line the agent changed: refused, and not one byte moves.
    await writeFile(join(repo, 'c.txt'), text({ charlie: 'user wrote this' }));
    const before = await snapshot(repo);
    const bytesBefore = await readFile(join(repo, 'c.txt'));
    const refused = await callError(e.client, 'apply_change', {
      change_id: conflicting?.change_id,
      action: 'apply',
    });
    expect(refused).toMatch(/^E_MERGE_CONFLICT: "c\.txt" changed since the agent's base/);
    expect((await readFile(join(repo, 'c.txt'))).equals(bytesBefore)).toBe(true);
    expect(await snapshot(repo)).toEqual(before);
    const { rows: still } = await ctx.db.query<{ status: string }>(
      'SELECT status FROM pending_changes WHERE id = $1',
      [conflicting?.change_id],
    );
    expect(still[0]?.status).toBe('pending');
  }, 600_000);

  it('fails a task whose reported token usage passes max_tokens with E_BUDGET_EXCEEDED, keeping its change', async () => {
    const repo = await e.repos.repo({ 'README.md': '# demo\n' });
    const queued = await callOk<Queued>(e.client, 'new_task', {
      project: repo,
      input: 'Please create budget.txt with content spent',
      max_tokens: 100,
    });
    const done = await settledTask<TaskOut & { output_summary: string | null }>(e.client, queued.task_id);
    expect(done).toMatchObject({ state: 'failed', error_code: 'E_BUDGET_EXCEEDED', max_tokens: 100 });
    expect((done.input_tokens ?? 0) + (done.output_tokens ?? 0)).toBeGreaterThan(100);
    // What really happens: opencode over ACP reports its usage once, when the turn ends (its
    // final text is already the summary), so the budget stops the task at the turn's end, not
    // between the write and the final answer. The file it wrote is kept for review.
    expect(done.output_summary).toBe(FINAL_TEXT);
    const changes = await changesOf(e.client, { task_id: queued.task_id });
    expect(changes.map((c) => [c.operation, c.file_path])).toEqual([['create', 'budget.txt']]);
    expect(changes[0]?.diff).toContain('+spent');
  }, 400_000);
});
