import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { queueSubtask } from '../services/subtasks.js';
import type { SubtaskScope } from '../subtasks/scope-tokens.js';
import { AGENT_NAME, MAX_INPUT_CHARS, runTool, toolResult } from './result.js';

/** new_task as a running agent sees it: project and parent come from its credential. */
export function registerSubtaskNewTool(server: McpServer, deps: Deps, scope: SubtaskScope): void {
  server.registerTool(
    'new_task',
    {
      title: 'Queue a sub-task',
      description:
        'Queues a sub-task of your current task for another coding agent, in this project, and returns at once ' +
        'with its id. Follow with get_task (wait_s) and list_pending_changes.',
      inputSchema: {
        input: z.string().min(1).max(MAX_INPUT_CHARS).describe('What the sub-task agent should do'),
        agent: AGENT_NAME.optional().describe('Which agent runs it (default: the configured default agent)'),
        model: z.string().min(1).max(200).optional().describe('Model for the agent, in its own naming'),
      },
      outputSchema: { task_id: z.string(), state: z.string(), parent_task_id: z.string(), agent: z.string() },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const q = await queueSubtask(deps, scope, args);
        return toolResult({
          task_id: q.task.id,
          state: q.task.state,
          parent_task_id: scope.taskId,
          agent: q.task.agent ?? deps.config.defaultAgent,
        });
      }),
  );
}
