import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { actOnChange, CHANGE_ACTIONS, type ChangeAction } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { runTool, toolResult } from './result.js';

export function registerApplyChangeTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'apply_change',
    {
      title: 'Apply, reject or revert a change',
      description:
        "action=apply writes the change into the project repository's working tree (refused, with nothing " +
        'written, if the file there no longer matches what the agent started from); reject marks it rejected; ' +
        'revert undoes an applied change.',
      inputSchema: {
        change_id: z.uuid(),
        action: z
          .string()
          .max(10)
          .refine(
            (a) => (CHANGE_ACTIONS as readonly string[]).includes(a),
            `action must be one of ${CHANGE_ACTIONS.join(', ')}`,
          )
          .describe(`One of ${CHANGE_ACTIONS.join(', ')}`),
      },
      outputSchema: {
        change_id: z.string(),
        file_path: z.string(),
        operation: z.string(),
        status: z.string(),
      },
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const c = await actOnChange(deps, args.change_id, args.action as ChangeAction);
        return toolResult({
          change_id: c.id,
          file_path: c.filePath,
          operation: c.operation,
          status: c.status,
        });
      }),
  );
}
