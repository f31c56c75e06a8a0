import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { PendingChange } from '../db/rows.js';
import { BoocoderError } from '../errors.js';
import { actOnChange, actOnChanges, CHANGE_ACTIONS, type ChangeAction } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { MAX_COMMENT_CHARS, requestChanges } from '../services/review.js';
import { runTool, toolResult } from './result.js';

/**
 * The most ids one call takes. The server refuses arguments of more than 1,000 elements in all
 * (MAX_TOOL_INPUT_ELEMENTS in server.ts), and `change_ids`, `action` and `comment` count as three of them.
 */
export const MAX_CHANGE_IDS = 997;

const changeOut = {
  change_id: z.string(),
  file_path: z.string(),
  operation: z.string(),
  status: z.string(),
};

const view = (c: PendingChange) => ({
  change_id: c.id,
  file_path: c.filePath,
  operation: c.operation,
  status: c.status,
});

export function registerApplyChangeTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'apply_change',
    {
      title: 'Apply, reject, revert or send back changes',
      description:
        "action=apply writes the change into the project repository's working tree; if the file there changed " +
        "since the agent's base, the change is three-way merged into it, and refused with the conflicting hunks " +
        '(E_MERGE_CONFLICT, nothing written) when it does not merge cleanly. reject marks it rejected; revert ' +
        'puts back what the file held before the apply (refused if the file changed since). request_changes ' +
        'rejects the change(s) and queues a follow-up task in the same chat whose prompt holds your comment, ' +
        'each file and its diff (follow_up_task_id); its change to each file replaces the rejected one. restore ' +
        'makes a rejected change pending again. Give change_id for one change, or change_ids (up to ' +
        `${MAX_CHANGE_IDS}, all of one project, no path twice) to act on many at once, all or nothing: if one ` +
        'cannot be applied, none is, and the error names it. The result of change_ids lists every change.',
      inputSchema: {
        change_id: z.uuid().optional().describe('One change (or use change_ids)'),
        change_ids: z
          .array(z.uuid())
          .min(1)
          .max(MAX_CHANGE_IDS)
          .refine((ids) => new Set(ids.map((id) => id.toLowerCase())).size === ids.length, {
            message: 'change_ids must not list a change twice',
          })
          .optional()
          .describe('Several changes, acted on all or nothing (or use change_id)'),
        comment: z
          .string()
          .min(1)
          .max(MAX_COMMENT_CHARS)
          .optional()
          .describe('For request_changes (required there): what the agent should change'),
        action: z
          .string()
          .max(20)
          .refine(
            (a) => (CHANGE_ACTIONS as readonly string[]).includes(a),
            `action must be one of ${CHANGE_ACTIONS.join(', ')}`,
          )
          .describe(`One of ${CHANGE_ACTIONS.join(', ')}`),
      },
      // The fields of one change for change_id; `changes` (one entry each) for change_ids.
      outputSchema: {
        change_id: z.string().optional(),
        file_path: z.string().optional(),
        operation: z.string().optional(),
        status: z.string().optional(),
        changes: z.array(z.object(changeOut)).optional(),
        follow_up_task_id: z.string().optional(),
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
        const action = args.action as ChangeAction;
        if ((args.change_id === undefined) === (args.change_ids === undefined)) {
          throw new BoocoderError(
            'E_INVALID_INPUT',
            args.change_id === undefined
              ? 'give change_id (one change) or change_ids (several); neither was given'
              : 'give either change_id or change_ids, not both',
          );
        }
        if (action === 'request_changes') {
          if (args.comment === undefined)
            throw new BoocoderError(
              'E_INVALID_INPUT',
              'request_changes needs a comment saying what to change',
            );
          const asked = await requestChanges(
            deps,
            args.change_ids ?? [args.change_id as string],
            args.comment,
          );
          const follow_up_task_id = asked.followUpTask.id;
          if (args.change_id !== undefined)
            return toolResult({ ...view(asked.changes[0] as PendingChange), follow_up_task_id });
          return toolResult({ changes: asked.changes.map(view), follow_up_task_id });
        }
        if (args.comment !== undefined)
          throw new BoocoderError('E_INVALID_INPUT', 'comment goes with action=request_changes only');
        if (args.change_id !== undefined)
          return toolResult(view(await actOnChange(deps, args.change_id, action)));
        const done = await actOnChanges(deps, args.change_ids ?? [], action);
        return toolResult({ changes: done.map(view) });
      }),
  );
}
