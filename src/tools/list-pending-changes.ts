import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { CHANGE_STATUSES, type ChangeStatus } from '../db/rows.js';
import { listPendingChanges } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { AGENT_NAME, runTool, toolResult } from './result.js';
import { changeView, DIFF_PREVIEW_BYTES, toChangeView } from './views.js';

export function registerListPendingChangesTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_pending_changes',
    {
      title: 'List the changes agents made',
      description:
        'Per-file changes (create/edit/delete) the agents produced, with a unified diff each (cut at ' +
        `${DIFF_PREVIEW_BYTES / 1024} KiB; the full diff is the resource at diff_uri), oldest first. Filter by ` +
        `session, task, status (${CHANGE_STATUSES.join(', ')}; default pending) or agent.`,
      inputSchema: {
        session_id: z.uuid().optional(),
        task_id: z.uuid().optional(),
        status: z
          .string()
          .max(20)
          .refine(
            (s) => (CHANGE_STATUSES as readonly string[]).includes(s),
            `status must be one of ${CHANGE_STATUSES.join(', ')}`,
          )
          .optional(),
        agent: AGENT_NAME.optional(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().max(100).optional(),
      },
      outputSchema: { changes: z.array(changeView), next_cursor: z.string().nullable() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const page = await listPendingChanges(deps, {
          sessionId: args.session_id,
          taskId: args.task_id,
          status: (args.status ?? 'pending') as ChangeStatus,
          agent: args.agent,
          limit: args.limit ?? 50,
          cursor: args.cursor,
        });
        return toolResult({ changes: page.changes.map(toChangeView), next_cursor: page.nextCursor });
      }),
  );
}
