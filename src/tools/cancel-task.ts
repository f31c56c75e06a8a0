import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { cancelTask } from '../services/tasks.js';
import { runTool, toolResult } from './result.js';

export function registerCancelTaskTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'cancel_task',
    {
      title: 'Cancel a task',
      description:
        'Cancels a pending task at once; a running task is stopped (its agent and all the agent’s processes are ' +
        'killed) and ends as cancelled. What the agent changed so far is still listed as pending changes.',
      inputSchema: { task_id: z.uuid() },
      outputSchema: { task_id: z.string(), state: z.string(), cancel_requested: z.boolean() },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const task = await cancelTask(deps, args.task_id);
        return toolResult({ task_id: task.id, state: task.state, cancel_requested: true });
      }),
  );
}
