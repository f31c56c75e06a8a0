/**
 * The REAL opencode over ACP, end to end through boocoder and a real MCP client, on both databases:
 * new_task → get_task(wait) → list_pending_changes → apply_change, driven offline by the scripted
 * model server. Assertions are on the worktree's diff and the repository, never on what the agent
 * says it did.
 */
import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
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

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  status: string;
  agent: string;
  diff: string;
}

describeEachDatabase('the real opencode over ACP, end to end', (ctx) => {
  let models: ModelServer;
  let user: FakeUserHome;
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    models = await startModelServer();
    user = await fakeUserHome();
    repos = tempRepos();
    const configDir = await repos.dir();
    const configFile = join(configDir, 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'opencode',
        agents: {
          opencode: {
            command: OPENCODE_BIN,
            args: ['acp'],
            env: opencodeEnv(models.baseUrl),
          },
        },
      }),
    );
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: configFile,
      // The "user" whose login agent-env links in: never the real home of whoever runs the tests.
      HOME: user.path,
      BOOCODER_TASK_TIMEOUT_MS: '60000',
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
      'Please create hello.txt with content hi from opencode',
      'Please edit README.md: replace # demo with # demo by opencode',
      'Please delete old.txt',
    ];
    const queued = await Promise.all(
      prompts.map((input) =>
        callOk<{ task_id: string; session_id: string }>(client, 'new_task', { project: repo, input }),
      ),
    );
    const done = await Promise.all(
      queued.map((q) =>
        callOk<{ state: string; error: string | null; pending_changes: number }>(client, 'get_task', {
          task_id: q.task_id,
          wait_s: 55,
        }),
      ),
    );
    for (const d of done) expect(d).toMatchObject({ state: 'completed', error: null, pending_changes: 1 });
    expect(await snapshot(repo)).toEqual(before);

    const changesOf = async (taskId: string) =>
      (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: taskId })).changes;
    const [created, edited, deleted] = await Promise.all(queued.map((q) => changesOf(q.task_id)));
    // Exactly one file each: opencode's own state and config stayed out of the worktree.
    expect(created?.map((c) => [c.operation, c.file_path, c.agent])).toEqual([
      ['create', 'hello.txt', 'opencode'],
    ]);
    expect(created?.[0]?.diff).toContain('+hi from opencode');
    expect(edited?.map((c) => [c.operation, c.file_path])).toEqual([['edit', 'README.md']]);
    expect(edited?.[0]?.diff).toContain('-# demo\n');
    expect(edited?.[0]?.diff).toContain('+# demo by opencode');
    expect(deleted?.map((c) => [c.operation, c.file_path])).toEqual([['delete', 'old.txt']]);

    for (const c of [...(created ?? []), ...(edited ?? []), ...(deleted ?? [])]) {
      expect(await callOk(client, 'apply_change', { change_id: c.change_id, action: 'apply' })).toMatchObject(
        {
          status: 'applied',
        },
      );
    }
    expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe('hi from opencode');
    expect(await readFile(join(repo, 'README.md'), 'utf8')).toBe('# demo by opencode\n');
    await expect(stat(join(repo, 'old.txt'))).rejects.toThrow(/ENOENT/);

    for (const q of queued) {
      const { agent_sessions } = await callOk<{ agent_sessions: Record<string, unknown>[] }>(
        client,
        'get_agent_sessions',
        { session_id: q.session_id },
      );
      expect(agent_sessions).toHaveLength(1);
      const session = agent_sessions[0] as Record<string, number | string | boolean>;
      expect(session).toMatchObject({ agent: 'opencode', status: 'idle', has_session: true });
      expect(session.input_tokens).toBeGreaterThanOrEqual(USAGE.prompt_tokens);
      expect(session.output_tokens).toBeGreaterThanOrEqual(USAGE.completion_tokens);
      expect(session.cost).toBeGreaterThan(0);
    }
    // The model server really drove it: a tool call for each file, named as opencode names them.
    const toolCalls = models.requests.flatMap((r) =>
      'toolCall' in r.answer ? [r.answer.toolCall.name] : [],
    );
    expect(toolCalls.sort()).toEqual(['bash', 'edit', 'write']);
  });

  it("kept opencode's state in its isolated home, with the user's login linked, not copied", async () => {
    const agentHome = join(boo.home, 'agents', 'opencode');
    expect((await stat(join(agentHome, '.local', 'share', 'opencode'))).isDirectory()).toBe(true);
    const linked = join(agentHome, '.local', 'share', 'opencode', 'auth.json');
    expect((await lstat(linked)).isSymbolicLink()).toBe(true);
    expect(await readlink(linked)).toBe(user.opencodeAuth);
    // Nothing but the login the test planted lives in the fake user's opencode directories.
    expect(await snapshot(user.path)).toEqual(
      new Map([['.local/share/opencode/auth.json', Buffer.from('{}\n').toString('base64')]]),
    );
  });
});
