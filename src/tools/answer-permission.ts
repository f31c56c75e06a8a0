import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { answerPermission } from '../services/permissions.js';
import { permissionRequestView, toPermissionRequestView } from './list-permission-requests.js';
import { runTool, toolResult } from './result.js';

export function registerAnswerPermissionTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'answer_permission',
    {
      title: 'Answer an agent’s permission request',
      description:
        'Picks one of the options a pending permission request offers (see list_permission_requests): the ' +
        'agent receives it and its blocked task runs on. A request is answered once; a second answer is refused.',
      inputSchema: {
        request_id: z.uuid(),
        option_id: z.string().min(1).max(200).describe('The option_id of one of the request’s options'),
      },
      outputSchema: { ...permissionRequestView.shape, task_resumed: z.boolean() },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const { request, taskResumed } = await answerPermission(deps, args.request_id, args.option_id);
        return toolResult({ ...toPermissionRequestView(request), task_resumed: taskResumed });
      }),
  );
}
