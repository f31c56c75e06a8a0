/**
 * The REAL Gemini CLI over ACP, end to end through boocoder and a real MCP client, on both
 * databases: new_task → get_task(wait) → list_pending_changes → apply_change, driven offline by the
 * scripted model server's Gemini API. Assertions are on the worktree's diff and the repository,
 * never on what the agent says it did.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GEMINI_USAGE } from '../fixtures/model-server/gemini-wire.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';
import { geminiAgentConfig, processesWorkingIn } from '../helpers/agents-real-gemini.js';
import { type FakeUserHome, fakeUserHome } from '../helpers/agents-real-opencode.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface TaskView {
  state: string;
  error: string | null;
  pending_changes: number;
}

/**
 * get_task with wait, again while the task is still queued or running: three agents starting at
 * once on a busy CI machine can take longer than one wait (55 s at most). The test's timeout bounds it.
 */
async function settledTask(client: Client, taskId: string): Promise<TaskView> {
  for (;;) {
    const task = await callOk<TaskView>(client, 'get_task', { task_id: taskId, wait_s: 55 });
    if (task.state !== 'pending' && task.state !== 'running') return task;
  }
}

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  agent: string;
  diff: string;
}

describeEachDatabase('the real Gemini CLI over ACP, end to end', (ctx) => {
  let models: ModelServer;
  let user: FakeUserHome;
  let userBefore: Map<string, string>;
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    models = await startModelServer();
    user = await fakeUserHome();
    userBefore = await snapshot(user.path);
    repos = tempRepos();
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({ agents: { gemini: geminiAgentConfig(models.geminiBaseUrl) } }),
    );
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: configFile,
      // The "user" whose login agent-env would link in: never the real home of whoever runs the tests.
      HOME: user.path,
      BOOCODER_TASK_TIMEOUT_MS: '180000',
    });
    client = await connectHttpClient(boo.http.url);
    repo = await repos.repo({ 'README.md': '# demo\n', 'old.txt': 'to be deleted\n' });
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await models?.close();
    await repos?.cleanup();
    await user?.cleanup();
  });

  it('creates, edits and deletes files in the worktree; the changes apply to the repository; usage is recorded', async () => {
    const before = await snapshot(repo);
    const prompts = [
      'Please create hello.txt with content hi from gemini',
      'Please edit README.md: replace # demo with # demo by gemini',
      'Please delete old.txt',
    ];
    const queued = await Promise.all(
      prompts.map((input) =>
        callOk<{ task_id: string; session_id: string }>(client, 'new_task', {
          project: repo,
          input,
          agent: 'gemini',
        }),
      ),
    );
    const done = await Promise.all(queued.map((q) => settledTask(client, q.task_id)));
    // Anything the CLI asked for that the scripted server does not serve would be a silent fallback.
    expect(models.unhandled).toEqual([]);
    for (const d of done) expect(d).toMatchObject({ state: 'completed', error: null, pending_changes: 1 });
    expect(await snapshot(repo)).toEqual(before);
    // Agents stay warm for follow-ups in their chat; closing them ends every agent process, the
    // relaunching parent (which ignores SIGTERM) included.
    await boo.app.deps.warmSessions?.closeAll();
    expect(processesWorkingIn(boo.home)).toEqual([]);

    const changesOf = async (taskId: string) =>
      (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: taskId })).changes;
    const [created, edited, deleted] = await Promise.all(queued.map((q) => changesOf(q.task_id)));
    // Exactly one file each: Gemini's settings, history and logs stayed out of the worktree.
    expect(created?.map((c) => [c.operation, c.file_path, c.agent])).toEqual([
      ['create', 'hello.txt', 'gemini'],
    ]);
    expect(created?.[0]?.diff).toContain('+hi from gemini');
    expect(edited?.map((c) => [c.operation, c.file_path])).toEqual([['edit', 'README.md']]);
    expect(edited?.[0]?.diff).toContain('-# demo\n');
    expect(edited?.[0]?.diff).toContain('+# demo by gemini');
    expect(deleted?.map((c) => [c.operation, c.file_path])).toEqual([['delete', 'old.txt']]);
    expect(deleted?.[0]?.diff).toContain('-to be deleted');

    for (const c of [...(created ?? []), ...(edited ?? []), ...(deleted ?? [])]) {
      expect(await callOk(client, 'apply_change', { change_id: c.change_id, action: 'apply' })).toMatchObject(
        {
          status: 'applied',
        },
      );
    }
    expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe('hi from gemini');
    expect(await readFile(join(repo, 'README.md'), 'utf8')).toBe('# demo by gemini\n');
    await expect(stat(join(repo, 'old.txt'))).rejects.toThrow(/ENOENT/);

    for (const q of queued) {
      const { agent_sessions } = await callOk<{ agent_sessions: Record<string, unknown>[] }>(
        client,
        'get_agent_sessions',
        { session_id: q.session_id },
      );
      expect(agent_sessions).toHaveLength(1);
      const session = agent_sessions[0] as Record<string, number | string | boolean>;
      // closeAll above ended the warm session, so it is recorded closed, not idle.
      expect(session).toMatchObject({ agent: 'gemini', status: 'closed', has_session: true });
      // Gemini sums its turn's model calls (the tool call and the final answer) into
      // PromptResponse._meta.quota; it reports no cost.
      expect(session.input_tokens).toBeGreaterThanOrEqual(2 * GEMINI_USAGE.promptTokenCount);
      expect(session.output_tokens).toBeGreaterThanOrEqual(2 * GEMINI_USAGE.candidatesTokenCount);
      expect(session.cost).toBe(0);
    }
    // The model server really drove it, over the Gemini API: one tool call per file, named as
    // Gemini names them.
    expect(models.requests.every((r) => r.wire === 'gemini')).toBe(true);
    const toolCalls = models.requests.flatMap((r) =>
      'toolCall' in r.answer ? [r.answer.toolCall.name] : [],
    );
    expect(toolCalls.sort()).toEqual(['replace', 'run_shell_command', 'write_file']);
  }, 240_000);

  it("kept Gemini's state in its isolated home, with settings that select the API key and keep it offline", async () => {
    const settings = JSON.parse(
      await readFile(join(boo.home, 'agents', 'gemini', '.gemini', 'settings.json'), 'utf8'),
    ) as Record<string, Record<string, unknown>>;
    expect(settings).toMatchObject({
      security: { auth: { selectedType: 'gemini-api-key' } },
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false },
    });
    // Gemini wrote its history and logs there, not into the fake user's home.
    expect((await stat(join(boo.home, 'agents', 'gemini', '.gemini', 'tmp'))).isDirectory()).toBe(true);
    expect(await snapshot(user.path)).toEqual(userBefore);
  });
});
