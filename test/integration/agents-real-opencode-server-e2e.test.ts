/**
 * The `opencode_server` execution path end to end: with opencodeBackend opencode_server, opencode
 * tasks run on one shared REAL `opencode serve` (scripted model server), a follow-up in the same chat
 * continues the same opencode session, and the changes land through list_pending_changes and
 * apply_change. Assertions are on files and recorded rows, never on what the agent says.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { USAGE } from '../fixtures/model-server/model-server.js';
import {
  agentSessionsOf,
  applyAll,
  changesOf,
  followUp,
  opencodeAgentConfig,
  runTaskToEnd,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

describeEachDatabase('opencode on the shared opencode serve (opencode_server path), end to end', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    models: { perUserTurn: true },
    config: (models) => ({
      defaultAgent: 'opencode',
      opencodeBackend: 'opencode_server',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '120000' },
  });

  it('runs two tasks of a chat in one opencode session on the shared server; the changes apply', async () => {
    const { client, repo } = e;
    const before = await snapshot(repo);
    const first = await runTaskToEnd(client, {
      project: repo,
      input: 'Please create one.txt with content first',
    });
    expect(first.done).toMatchObject({ state: 'completed', error: null });
    const { rows } = await ctx.db.query<{ execution_path: string }>(
      'SELECT execution_path FROM tasks WHERE id = $1',
      [first.queued.task_id],
    );
    expect(rows[0]?.execution_path).toBe('opencode_server');
    const [afterFirst] = await agentSessionsOf(client, first.queued.session_id);
    expect(afterFirst).toMatchObject({ agent: 'opencode', backend: 'opencode_server', status: 'idle' });

    const second = await runTaskToEnd(client, {
      project: repo,
      input: 'Please create two.txt with content second',
      ...followUp(first.queued),
    });
    expect(second.done).toMatchObject({ state: 'completed', error: null });
    const [afterSecond] = await agentSessionsOf(client, first.queued.session_id);
    // The follow-up continued the chat's opencode session, and usage summed over both turns.
    expect(afterSecond?.agent_session_id).toBe(afterFirst?.agent_session_id);
    expect(Number(afterSecond?.input_tokens)).toBeGreaterThanOrEqual(2 * USAGE.prompt_tokens);
    expect(Number(afterSecond?.cost)).toBeGreaterThan(Number(afterFirst?.cost));

    expect(await snapshot(repo)).toEqual(before);
    const changes = await changesOf(client, { session_id: first.queued.session_id });
    expect(changes.map((c) => [c.file_path, c.agent]).sort()).toEqual([
      ['one.txt', 'opencode'],
      ['two.txt', 'opencode'],
    ]);
    await applyAll(client, changes);
    expect(await readFile(join(repo, 'one.txt'), 'utf8')).toBe('first');
    expect(await readFile(join(repo, 'two.txt'), 'utf8')).toBe('second');
  });
});
