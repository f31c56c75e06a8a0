/**
 * The REAL opencode over ACP, end to end through boocoder and a real MCP client, on both databases:
 * new_task → get_task(wait) → list_pending_changes → apply_change, driven offline by the scripted
 * model server. Assertions are on the worktree's diff and the repository, never on what the agent
 * says it did.
 */
import { lstat, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { USAGE } from '../fixtures/model-server/model-server.js';
import {
  applyCrudChanges,
  CRUD_FILES,
  opencodeAgentConfig,
  runCrudTasks,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('the real opencode over ACP, end to end', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({
      defaultAgent: 'opencode',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '60000' },
    files: CRUD_FILES,
  });

  it('creates, edits and deletes files in the worktree; the changes apply to the repository; usage is recorded', async () => {
    const { client, models } = e;
    // No agent named: opencode runs as the config's default agent.
    const queued = await runCrudTasks(e, 'opencode', {});
    // Exactly one file each: opencode's own state and config stayed out of the worktree.
    await applyCrudChanges(e, 'opencode', queued, 'hi from opencode');

    for (const q of queued) {
      const session = await soleAgentSessionOf<Record<string, number | string | boolean>>(
        client,
        q.session_id,
      );
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
    const { boo, user } = e;
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
