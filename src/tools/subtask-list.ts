import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { listSubtasks } from '../services/subtasks.js';
import type { SubtaskScope } from '../subtasks/scope-tokens.js';
import { runTool, toolResult } from './result.js';
import { taskView, toTaskView } from './views.js';

/** list_tasks as a running agent sees it: its own sub-tasks, oldest first. */
export function registerSubtaskListTool(server: McpServer, deps: Deps, scope: SubtaskScope): void {
  server.registerTool(
    'list_tasks',
    {
      title: 'List your sub-tasks',
      description: 'The sub-tasks you queued from this task, oldest first, with their states.',
      inputSchema: { limit: z.number().int().min(1).max(200).optional() },
      outputSchema: { tasks: z.array(taskView) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const rows = await listSubtasks(deps, scope, args.limit ?? 50);
        return toolResult({ tasks: rows.map(toTaskView) });
      }),
  );
}
