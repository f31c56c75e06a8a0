/**
 * The REAL Gemini CLI over ACP, end to end through boocoder and a real MCP client, on both
 * databases: new_task → get_task(wait) → list_pending_changes → apply_change, driven offline by the
 * scripted model server's Gemini API. Assertions are on the worktree's diff and the repository,
 * never on what the agent says it did.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { GEMINI_USAGE } from '../fixtures/model-server/gemini-wire.js';
import {
  applyCrudChanges,
  CRUD_FILES,
  closeWarmAgents,
  runCrudTasks,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { geminiAgentConfig } from '../helpers/agents-real-gemini.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('the real Gemini CLI over ACP, end to end', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({ agents: { gemini: geminiAgentConfig(models.geminiBaseUrl) } }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '180000' },
    files: CRUD_FILES,
  });

  it('creates, edits and deletes files in the worktree; the changes apply to the repository; usage is recorded', async () => {
    const { client, models } = e;
    // Three agents starting at once on a busy CI machine: runCrudTasks waits as long as they take.
    const queued = await runCrudTasks(e, 'gemini', { agent: 'gemini' });
    // Closing the warm sessions ends every agent process, the relaunching parent (which ignores
    // SIGTERM) included.
    await closeWarmAgents(e);
    // Exactly one file each: Gemini's settings, history and logs stayed out of the worktree.
    await applyCrudChanges(e, 'gemini', queued, 'hi from gemini');

    for (const q of queued) {
      const session = await soleAgentSessionOf<Record<string, number | string | boolean>>(
        client,
        q.session_id,
      );
      // closeWarmAgents above ended the warm session, so it is recorded closed, not idle.
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
    const { boo, user, userBefore } = e;
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
