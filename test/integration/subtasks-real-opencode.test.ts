/**
 * The REAL opencode over ACP delegates, on both databases: boocoder is an MCP server of its session
 * (HTTP, with a credential scoped to its task), the scripted model calls `boocoder_new_task` from
 * inside the parent's turn, and the child runs (opencode again) and records its change with
 * parent_task_id set. Assertions are on boocoder's rows and the child's diff.
 */
import { expect, it } from 'vitest';
import {
  changesOf,
  opencodeAgentConfig,
  runTaskToEnd,
  settledTask,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface Listed {
  tasks: Array<{ task_id: string; parent_task_id: string | null; project_id: string; input: string }>;
}

describeEachDatabase('the real opencode queues a sub-task through boocoder', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({
      defaultAgent: 'opencode',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '90000' },
  });

  it('calls boocoder_new_task from its session; the child runs and records its change', async () => {
    const { client, models, repo } = e;
    const { queued, done } = await runTaskToEnd(client, {
      project: repo,
      input: 'delegate create child.txt with content from the child',
    });
    expect(done.state).toBe('completed');
    const toolCalls = models.requests.flatMap((r) =>
      'toolCall' in r.answer ? [r.answer.toolCall.name] : [],
    );
    expect(toolCalls).toContain('boocoder_new_task');

    const all = await callOk<Listed>(client, 'list_tasks', {});
    const children = all.tasks.filter((t) => t.parent_task_id === queued.task_id);
    expect(children).toHaveLength(1);
    const child = children[0] as Listed['tasks'][number];
    const childDone = await settledTask(client, child.task_id);
    expect(childDone.state).toBe('completed');
    const changes = await changesOf(client, { task_id: child.task_id });
    expect(changes.map((c) => [c.file_path, c.operation])).toEqual([['child.txt', 'create']]);
    expect(changes[0]?.diff).toContain('+from the child');
  });
});
