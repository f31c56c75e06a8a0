import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { getSubtask } from '../services/subtasks.js';
import type { SubtaskScope } from '../subtasks/scope-tokens.js';
import { MAX_WAIT_S } from './get-task.js';
import { runTool, toolResult } from './result.js';
import { taskView, toTaskView } from './views.js';

/** get_task as a running agent sees it: only its own sub-tasks. */
export function registerSubtaskGetTool(server: McpServer, deps: Deps, scope: SubtaskScope): void {
  server.registerTool(
    'get_task',
    {
      title: 'Read a sub-task (optionally waiting for it to finish)',
      description: `A sub-task's state, output summary, error and pending-change count; with wait_s (at most ${MAX_WAIT_S}) it returns as soon as the sub-task finishes.`,
      inputSchema: { task_id: z.uuid(), wait_s: z.number().min(0).max(MAX_WAIT_S).optional() },
      outputSchema: { ...taskView.shape, pending_changes: z.number(), finished: z.boolean() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(deps.logger, async () => {
        const r = await getSubtask(deps, scope, args.task_id, args.wait_s, extra.signal);
        const finished = ['completed', 'failed', 'cancelled'].includes(r.task.state);
        return toolResult({ ...toTaskView(r.task), pending_changes: r.pendingChanges, finished });
      }),
  );
}
