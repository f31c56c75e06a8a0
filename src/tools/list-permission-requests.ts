import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import {
  PERMISSION_REQUEST_STATES,
  type PermissionRequest,
  type PermissionRequestState,
} from '../db/permission-requests.js';
import type { Deps } from '../services/deps.js';
import { listPermissionRequests } from '../services/permissions.js';
import { iso, isoSchema, runTool, toolResult } from './result.js';

export const permissionRequestView = z.object({
  request_id: z.string(),
  task_id: z.string(),
  session_id: z.string().nullable(),
  agent: z.string(),
  state: z.string(),
  title: z.string().nullable(),
  kind: z.string().nullable(),
  locations: z.array(z.object({ path: z.string(), line: z.number().optional() })),
  options: z.array(z.object({ option_id: z.string(), name: z.string(), kind: z.string() })),
  chosen_option_id: z.string().nullable(),
  created_at: isoSchema,
  answered_at: isoSchema,
});

export function toPermissionRequestView(r: PermissionRequest): z.infer<typeof permissionRequestView> {
  return {
    request_id: r.id,
    task_id: r.taskId,
    session_id: r.sessionId,
    agent: r.agent,
    state: r.state,
    title: r.title,
    kind: r.kind,
    locations: r.locations,
    options: r.options.map((o) => ({ option_id: o.optionId, name: o.name, kind: o.kind })),
    chosen_option_id: r.chosenOptionId,
    created_at: iso(r.createdAt),
    answered_at: iso(r.answeredAt),
  };
}

export function registerListPermissionRequestsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_permission_requests',
    {
      title: 'List agents’ permission requests',
      description:
        'Permission requests agents are waiting on (their tasks are blocked until answer_permission picks ' +
        'one of the offered options), oldest first. Filter by session, task or state ' +
        `(${PERMISSION_REQUEST_STATES.join(', ')}; default pending); paged by cursor.`,
      inputSchema: {
        session_id: z.uuid().optional(),
        task_id: z.uuid().optional(),
        state: z
          .string()
          .max(20)
          .refine(
            (s) => (PERMISSION_REQUEST_STATES as readonly string[]).includes(s),
            `state must be one of ${PERMISSION_REQUEST_STATES.join(', ')}`,
          )
          .optional(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().max(100).optional(),
      },
      outputSchema: { requests: z.array(permissionRequestView), next_cursor: z.string().nullable() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const page = await listPermissionRequests(deps, {
          sessionId: args.session_id,
          taskId: args.task_id,
          state: (args.state ?? 'pending') as PermissionRequestState,
          limit: args.limit ?? 50,
          cursor: args.cursor,
        });
        return toolResult({
          requests: page.requests.map(toPermissionRequestView),
          next_cursor: page.nextCursor,
        });
      }),
  );
}
