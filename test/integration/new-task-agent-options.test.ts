/**
 * new_task's mode, thinking and features through a real MCP client, on PGlite and PostgreSQL:
 * malformed values are refused, naming the argument, before anything is queued; good ones are
 * stored on the task, and an agent that offers no such option fails the task with E_INVALID_INPUT
 * saying what it lacks instead of running with other settings.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const INVALID = 'MCP error -32602: Input validation error: Invalid arguments for tool new_task: ';

describeEachDatabase('new_task agent options', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const refusal = async (args: Record<string, unknown>) => {
    const res = (await client.callTool({
      name: 'new_task',
      arguments: { project: repo, input: 'say hi', ...args },
    })) as CallToolResult;
    expect(res.isError).toBe(true);
    const first = res.content[0];
    return first?.type === 'text' ? first.text : '';
  };

  it('refuses malformed mode, thinking and features, naming the argument, and queues nothing', async () => {
    expect(await refusal({ mode: '' })).toBe(
      `${INVALID}Too small: expected string to have >=1 characters at mode`,
    );
    expect(await refusal({ thinking: 'x'.repeat(201) })).toBe(
      `${INVALID}Too big: expected string to have <=200 characters at thinking`,
    );
    expect(await refusal({ features: { fast: 1 } })).toBe(
      `${INVALID}each feature is a value id (1 to 200 characters) or true/false at features.fast`,
    );
    expect(await refusal({ features: { fast: '' } })).toMatch(/at features\.fast$/);
    expect(await refusal({ features: { ['k'.repeat(201)]: true } })).toMatch(
      new RegExp(
        `^${INVALID.replace(/[.()]/g, '\\$&')}a feature id is 1 to 200 characters at features\\.k+$`,
      ),
    );
    expect(await refusal({ features: ['fast'] })).toMatch(/expected record, received array at features$/);
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, true]));
    expect(await refusal({ features: many })).toBe(`${INVALID}at most 32 features at features`);
    // PostgreSQL text and jsonb cannot hold U+0000: refused with a code, not a driver error.
    expect(await refusal({ thinking: 'hi\u0000gh' })).toMatch(/^E_INVALID_INPUT: thinking contains a NUL/);
    expect(await refusal({ features: { 'sand\u0000box': true } })).toMatch(
      /^E_INVALID_INPUT: features contains a NUL/,
    );
    expect(await refusal({ features: { sandbox: 'a\u0000' } })).toMatch(
      /^E_INVALID_INPUT: features contains a NUL/,
    );
    const { rows } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows[0]?.n).toBe(0);
  });

  it('stores the options on the task, and fails the task when the agent offers no such mode', async () => {
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'say hi',
      mode: 'plan',
      thinking: 'high',
      features: { fast: true, sandbox: 'strict' },
    });
    const { rows } = await ctx.db.query(
      'SELECT mode_id, thinking_option_id, feature_values FROM tasks WHERE id = $1',
      [queued.task_id],
    );
    expect(rows[0]).toEqual({
      mode_id: 'plan',
      thinking_option_id: 'high',
      feature_values: { fast: true, sandbox: 'strict' },
    });
    const done = await callOk<{ state: string; error_code: string | null; error: string | null }>(
      client,
      'get_task',
      { task_id: queued.task_id, wait_s: 50 },
    );
    expect(done).toMatchObject({
      state: 'failed',
      error_code: 'E_INVALID_INPUT',
      error: 'agent "fixture" has no mode "plan"; it lets no client choose a mode',
    });
  });

  it("gives a task the config file's model for its agent when new_task names none", async () => {
    const spec = acpTestAgentSpec();
    const configFile = join(await repos.dir(), 'config.json');
    const fixture = { command: spec.command, args: spec.args, model: 'p/configured' };
    await writeFile(configFile, JSON.stringify({ defaultAgent: 'fixture', agents: { fixture } }));
    const configured = await startTestBoocoder(ctx.db, { BOOCODER_CONFIG: configFile });
    const c = await connectHttpClient(configured.http.url);
    try {
      const byConfig = await callOk<{ task_id: string }>(c, 'new_task', { project: repo, input: 'say hi' });
      const byTask = await callOk<{ task_id: string }>(c, 'new_task', {
        project: repo,
        input: 'say hi',
        model: 'p/asked',
      });
      const done = async (id: string) =>
        callOk<{ model: string | null; error: string | null }>(c, 'get_task', { task_id: id, wait_s: 50 });
      // The fixture agent offers no models: the error shows which model reached it.
      expect(await done(byConfig.task_id)).toMatchObject({ model: 'p/configured' });
      expect((await done(byConfig.task_id)).error).toContain('p/configured');
      expect(await done(byTask.task_id)).toMatchObject({ model: 'p/asked' });
    } finally {
      await c.close();
      await configured.close();
    }
  });
});
