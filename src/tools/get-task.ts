import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { getTaskWithChildren, MAX_CHILDREN_SHOWN } from '../services/tasks.js';
import { runTool, toolResult } from './result.js';
import { taskView, toTaskView } from './views.js';

/** Clients time out tool calls at about 60 s: a wait must end well before that. */
export const MAX_WAIT_S = 55;

export function registerGetTaskTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'get_task',
    {
      title: 'Read a task (optionally waiting for it to finish)',
      description:
        `A task's state, agent, times, output summary, error and pending-change count. With wait_s (at most ` +
        `${MAX_WAIT_S}) it returns as soon as the task leaves pending/running, sending progress while it waits ` +
        '(its message says what the agent is doing, e.g. "running npm test"): finished (completed, failed, cancelled) or blocked on a permission request (see answer_permission).',
      inputSchema: {
        task_id: z.uuid(),
        wait_s: z
          .number()
          .min(0)
          .max(MAX_WAIT_S)
          .optional()
          .describe(`Seconds to wait for the task to finish (0-${MAX_WAIT_S})`),
      },
      outputSchema: {
        ...taskView.shape,
        pending_changes: z.number(),
        finished: z.boolean(),
        children: z
          .array(z.object({ task_id: z.string(), state: z.string(), agent: z.string().nullable() }))
          .describe(
            `Its sub-tasks, oldest first (at most ${MAX_CHILDREN_SHOWN}; list_tasks parent_task_id has all)`,
          ),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(deps.logger, async () => {
        const progressToken = extra._meta?.progressToken;
        const result = await getTaskWithChildren(
          deps,
          args.task_id,
          args.wait_s
            ? {
                waitS: args.wait_s,
                opts: {
                  signal: extra.signal,
                  onTick: async (task, elapsedMs) => {
                    if (progressToken === undefined) return;
                    await extra.sendNotification({
                      method: 'notifications/progress',
                      params: {
                        progressToken,
                        progress: Math.floor(elapsedMs / 1000),
                        total: args.wait_s,
                        // What the agent is doing (its transcript's latest tool call), not a counter.
                        message:
                          task.state === 'running' && task.nowDoing ? task.nowDoing : `task ${task.state}`,
                      },
                    });
                  },
                },
              }
            : undefined,
        );
        const view = toTaskView(result.task);
        const finished = ['completed', 'failed', 'cancelled'].includes(result.task.state);
        const children = result.children.map((c) => ({ task_id: c.id, state: c.state, agent: c.agent }));
        return toolResult({ ...view, pending_changes: result.pendingChanges, finished, children });
      }),
  );
}
