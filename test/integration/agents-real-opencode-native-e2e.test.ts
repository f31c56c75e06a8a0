/**
 * The `native` execution path end to end: with BOOCODER_OPENCODE_BACKEND=serve, opencode tasks run
 * on one shared REAL `opencode serve` (scripted model server), a follow-up in the same chat
 * continues the same opencode session, and the changes land through list_pending_changes and
 * apply_change. Assertions are on files and recorded rows, never on what the agent says.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ModelServer, startModelServer, USAGE } from '../fixtures/model-server/model-server.js';
import {
  type FakeUserHome,
  fakeUserHome,
  OPENCODE_BIN,
  opencodeEnv,
} from '../helpers/agents-real-opencode.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Queued {
  task_id: string;
  session_id: string;
  chat_id: string;
}

describeEachDatabase('opencode on the shared opencode serve (native path), end to end', (ctx) => {
  let models: ModelServer;
  let user: FakeUserHome;
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    models = await startModelServer({ perUserTurn: true });
    user = await fakeUserHome();
    repos = tempRepos();
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'opencode',
        opencodeBackend: 'serve',
        agents: { opencode: { command: OPENCODE_BIN, args: ['acp'], env: opencodeEnv(models.baseUrl) } },
      }),
    );
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: configFile,
      HOME: user.path,
      BOOCODER_TASK_TIMEOUT_MS: '120000',
    });
    client = await connectHttpClient(boo.http.url);
    repo = await repos.repo({ 'README.md': '# demo\n' });
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await models?.close();
    await repos?.cleanup();
    await user?.cleanup();
  });

  const runToEnd = async (args: Record<string, unknown>) => {
    const queued = await callOk<Queued>(client, 'new_task', { project: repo, ...args });
    let done = await callOk<{ state: string; error: string | null }>(client, 'get_task', {
      task_id: queued.task_id,
      wait_s: 55,
    });
    if (done.state === 'pending' || done.state === 'running')
      done = await callOk(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    return { queued, done };
  };

  it('runs two tasks of a chat in one opencode session on the shared server; the changes apply', async () => {
    const before = await snapshot(repo);
    const first = await runToEnd({ input: 'Please create one.txt with content first' });
    expect(first.done).toMatchObject({ state: 'completed', error: null });
    const { rows } = await ctx.db.query<{ execution_path: string }>(
      'SELECT execution_path FROM tasks WHERE id = $1',
      [first.queued.task_id],
    );
    expect(rows[0]?.execution_path).toBe('native');
    const sessionsOf = async () =>
      (
        await callOk<{ agent_sessions: Record<string, unknown>[] }>(client, 'get_agent_sessions', {
          session_id: first.queued.session_id,
        })
      ).agent_sessions;
    const [afterFirst] = await sessionsOf();
    expect(afterFirst).toMatchObject({ agent: 'opencode', backend: 'opencode_server', status: 'idle' });

    const second = await runToEnd({
      input: 'Please create two.txt with content second',
      session_id: first.queued.session_id,
      chat_id: first.queued.chat_id,
    });
    expect(second.done).toMatchObject({ state: 'completed', error: null });
    const [afterSecond] = await sessionsOf();
    // The follow-up continued the chat's opencode session, and usage summed over both turns.
    expect(afterSecond?.agent_session_id).toBe(afterFirst?.agent_session_id);
    expect(Number(afterSecond?.input_tokens)).toBeGreaterThanOrEqual(2 * USAGE.prompt_tokens);
    expect(Number(afterSecond?.cost)).toBeGreaterThan(Number(afterFirst?.cost));

    expect(await snapshot(repo)).toEqual(before);
    const { changes } = await callOk<{ changes: { change_id: string; file_path: string; agent: string }[] }>(
      client,
      'list_pending_changes',
      { session_id: first.queued.session_id },
    );
    expect(changes.map((c) => [c.file_path, c.agent]).sort()).toEqual([
      ['one.txt', 'opencode'],
      ['two.txt', 'opencode'],
    ]);
    for (const c of changes)
      await callOk(client, 'apply_change', { change_id: c.change_id, action: 'apply' });
    expect(await readFile(join(repo, 'one.txt'), 'utf8')).toBe('first');
    expect(await readFile(join(repo, 'two.txt'), 'utf8')).toBe('second');
  });
});
