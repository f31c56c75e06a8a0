/**
 * Budgets with the ACP fixture agent, on the embedded PostgreSQL and the server: a task whose agent reports a cost
 * past max_cost mid-turn is stopped then (not when its long turn would end), failed with
 * E_BUDGET_EXCEEDED, the file it wrote before kept as a pending change; a token budget met only by
 * the turn's final report stops it at the end; the config file's project budget applies when
 * new_task names none; get_usage sums what was recorded per agent, model and day.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface TaskOut {
  state: string;
  error_code: string | null;
  error: string | null;
  cost: number | null;
  cost_currency: string;
  input_tokens: number | null;
  max_cost: number | null;
  max_tokens: number | null;
}

describeEachDatabase('task budgets', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  let capped: string;

  beforeAll(async () => {
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
    capped = await repos.repo({ 'README.md': '# capped\n' });
    const spec = acpTestAgentSpec();
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'fixture',
        agents: { fixture: { command: spec.command, args: spec.args } },
        budgets: { [capped]: { maxTokens: 50 } },
      }),
    );
    boo = await startTestBoocoder(ctx.db, { BOOCODER_CONFIG: configFile });
    client = await connectHttpClient(boo.http.url);
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const run = async (args: Record<string, unknown>) => {
    const q = await callOk<{ task_id: string }>(client, 'new_task', { project: repo, ...args });
    const done = await callOk<TaskOut>(client, 'get_task', { task_id: q.task_id, wait_s: 50 });
    return { id: q.task_id, done };
  };

  it('stops a task when its agent reports a cost past max_cost mid-turn, keeping its changes', async () => {
    // Without the budget the turn would sleep for ten minutes: only the stop ends it in time.
    const { id, done } = await run({
      input: 'write notes.txt first draft\nusage 10 20 1.5\nsleep 600000',
      max_cost: 0.5,
    });
    expect(done).toMatchObject({ state: 'failed', error_code: 'E_BUDGET_EXCEEDED', max_cost: 0.5 });
    expect(done.error).toMatch(/cost of 1\.5 USD, past its budget of 0\.5/);
    const { changes } = await callOk<{ changes: { file_path: string; status: string }[] }>(
      client,
      'list_pending_changes',
      { task_id: id },
    );
    expect(changes).toEqual([expect.objectContaining({ file_path: 'notes.txt', status: 'pending' })]);
  });

  it('stops at the turn’s end when only the final report passes max_tokens; a task within budget completes', async () => {
    const over = await run({ input: 'usage 100 200 0.01\nsay done', max_tokens: 250 });
    expect(over.done).toMatchObject({ state: 'failed', error_code: 'E_BUDGET_EXCEEDED', input_tokens: 100 });
    expect(over.done.error).toMatch(/300 tokens, past its budget of 250/);
    const within = await run({ input: 'usage 100 200 0.01\nsay done', max_tokens: 300, max_cost: 1 });
    expect(within.done).toMatchObject({ state: 'completed', cost: 0.01, cost_currency: 'USD' });
  });

  it("gives a task the config file's project budget when new_task names none", async () => {
    const { done } = await run({ project: capped, input: 'usage 40 20 0\nsay done' });
    expect(done).toMatchObject({ state: 'failed', error_code: 'E_BUDGET_EXCEEDED', max_tokens: 50 });
  });

  it('get_usage sums tokens and cost per agent, model and day, and filters by project', async () => {
    const all = await callOk<{ usage: Record<string, unknown>[] }>(client, 'get_usage', { project: repo });
    const day = new Date().toISOString().slice(0, 10);
    expect(all.usage).toEqual([
      {
        agent: 'fixture',
        model: null,
        day,
        currency: 'USD',
        tasks: 3,
        unreported: 0,
        // The task stopped mid-turn got no final token report (its cancelled turn carries none): its cost counts.
        input_tokens: 200,
        output_tokens: 400,
        cost: expect.closeTo(1.52, 6),
      },
    ]);
    const total = await callOk<{ usage: Record<string, unknown>[] }>(client, 'get_usage', { group_by: '' });
    expect(total.usage).toEqual([
      expect.objectContaining({ agent: null, day: null, tasks: 4, input_tokens: 240, output_tokens: 420 }),
    ]);
    const none = await callOk<{ usage: unknown[] }>(client, 'get_usage', {
      project: repo,
      since: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(none.usage).toEqual([]);
  });
});
