/**
 * The chat's conversation outlives its agent process: after the warm opencode process of a chat was
 * closed (here by the idle timeout, as after a restart), the chat's next task starts a new process
 * that continues the same opencode session with ACP session/load, so the model sees the earlier
 * turn. The REAL opencode over ACP, driven offline by the scripted model server.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import {
  changesOf,
  followUp,
  opencodeAgentConfig,
  type Queued,
  runTaskToEnd,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface AgentSessionView {
  status: string;
  agent_session_id: string | null;
}

describeEachDatabase('a chat continues its agent session after the process is gone', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    // Each task's own turn makes its tool call although the history holds the earlier turn's result.
    models: { perUserTurn: true },
    config: (models) => ({
      defaultAgent: 'opencode',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: {
      BOOCODER_TASK_TIMEOUT_MS: '60000',
      // The warm process is closed soon after each task, as it would be by a restart.
      BOOCODER_AGENT_IDLE_MS: '300',
    },
  });

  const sessionOf = (q: Queued) => soleAgentSessionOf<AgentSessionView>(e.client, q.session_id);

  const runToEnd = async (input: string, previous?: Queued): Promise<Queued> => {
    const { queued, done } = await runTaskToEnd(e.client, {
      project: e.repo,
      input,
      ...(previous ? followUp(previous) : {}),
    });
    expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
    return queued;
  };

  it('loads the earlier session into a new process: same session id, the model sees the first turn', async () => {
    const first = await runToEnd('Please create one.txt with content first');
    const before = await sessionOf(first);
    expect(before.agent_session_id).toBeTruthy();
    // Wait for the idle close: the chat's process is gone and the session is recorded closed.
    for (let i = 0; i < 200 && (await sessionOf(first)).status !== 'closed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await sessionOf(first)).status).toBe('closed');

    const second = await runToEnd('Please create two.txt with content second', first);
    expect(await sessionOf(second)).toMatchObject({ agent_session_id: before.agent_session_id });
    // The second task's model request carries the first task's prompt: the conversation went on.
    const secondTurn = e.models.requests.find((r) => JSON.stringify(r.body).includes('two.txt with content'));
    expect(JSON.stringify(secondTurn?.body)).toContain('one.txt with content first');
    expect(e.models.unhandled).toEqual([]);
    const changes = await changesOf(e.client, { task_id: second.task_id });
    expect(changes.map((c) => c.file_path)).toEqual(['two.txt']);
    expect(await readFile(join(e.repo, 'README.md'), 'utf8')).toBe('# demo\n');
  }, 180_000);
});
