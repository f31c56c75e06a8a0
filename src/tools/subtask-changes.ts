import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { listPendingChanges } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { getSubtask } from '../services/subtasks.js';
import type { SubtaskScope } from '../subtasks/scope-tokens.js';
import { runTool, toolResult } from './result.js';
import { changeView, toChangeView } from './views.js';

/** list_pending_changes as a running agent sees it: one of its sub-tasks' changes, read only. */
export function registerSubtaskChangesTool(server: McpServer, deps: Deps, scope: SubtaskScope): void {
  server.registerTool(
    'list_pending_changes',
    {
      title: "Read a sub-task's changes",
      description: 'The per-file changes (with diffs) one of your sub-tasks produced.',
      inputSchema: {
        task_id: z.uuid(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().max(100).optional(),
      },
      outputSchema: { changes: z.array(changeView), next_cursor: z.string().nullable() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        await getSubtask(deps, scope, args.task_id);
        const page = await listPendingChanges(deps, {
          taskId: args.task_id,
          limit: args.limit ?? 50,
          cursor: args.cursor,
        });
        return toolResult({ changes: page.changes.map(toChangeView), next_cursor: page.nextCursor });
      }),
  );
}
