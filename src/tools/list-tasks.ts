import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { TASK_STATES, type TaskState } from '../db/rows.js';
import { decodeCursor, encodeCursor } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { listTasks } from '../services/tasks.js';
import { AGENT_NAME, runTool, toolResult } from './result.js';
import { taskView, toTaskView } from './views.js';

export function registerListTasksTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_tasks',
    {
      title: 'List tasks',
      description: `Tasks in queue order, filtered by project, session, parent task (its sub-tasks), state (${TASK_STATES.join(', ')}) or agent; paged by cursor.`,
      inputSchema: {
        project_id: z.uuid().optional(),
        session_id: z.uuid().optional(),
        parent_task_id: z.uuid().optional().describe('Only the sub-tasks of this task'),
        state: z
          .string()
          .max(20)
          .refine(
            (s) => (TASK_STATES as readonly string[]).includes(s),
            `state must be one of ${TASK_STATES.join(', ')}`,
          )
          .optional(),
        agent: AGENT_NAME.optional(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().max(100).optional(),
      },
      outputSchema: { tasks: z.array(taskView), next_cursor: z.string().nullable() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const limit = args.limit ?? 50;
        const rows = await listTasks(deps, {
          projectId: args.project_id,
          sessionId: args.session_id,
          parentTaskId: args.parent_task_id,
          state: args.state as TaskState | undefined,
          agent: args.agent,
          afterSeq: decodeCursor(args.cursor),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return toolResult({
          tasks: page.map(toTaskView),
          next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
        });
      }),
  );
}
