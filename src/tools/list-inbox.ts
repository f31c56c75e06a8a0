import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { BoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { type InboxEntry, listInbox } from '../services/inbox.js';
import { MAX_WAIT_S } from './get-task.js';
import { iso, runTool, toolResult } from './result.js';
import { taskView, toTaskView } from './views.js';

export const INBOX_URI = 'boocoder://inbox';

const entryView = z.object({
  reason: z.string(),
  task: taskView,
  unreviewed_changes: z.number(),
  permission_requests: z.array(
    z.object({
      request_id: z.string(),
      title: z.string().nullable(),
      kind: z.string().nullable(),
      options: z.unknown(),
    }),
  ),
});

export function toInboxEntryView(e: InboxEntry): z.infer<typeof entryView> {
  return {
    reason: e.reason,
    task: toTaskView(e.task),
    unreviewed_changes: e.unreviewedChanges,
    permission_requests: e.requests.map((r) => ({
      request_id: r.requestId,
      title: r.title,
      kind: r.kind,
      options: r.options,
    })),
  };
}

function sinceOf(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new BoocoderError('E_INVALID_INPUT', 'since must be a cursor list_inbox returned (an ISO time)');
  return date;
}

export function registerListInboxTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_inbox',
    {
      title: 'What needs attention',
      description:
        'Tasks that need a human or the calling agent, newest first: blocked on a permission request ' +
        '(answer with answer_permission), failed (with their error), or finished with changes not yet reviewed ' +
        `(see list_pending_changes). With wait_s (at most ${MAX_WAIT_S}) it waits until an entry newer than since ` +
        `(default: now) arrives; pass the returned cursor as since to wait for the next one. ` +
        `Subscribe to ${INBOX_URI} for updates instead, where the client supports it.`,
      inputSchema: {
        project_id: z.uuid().optional(),
        limit: z.number().int().min(1).max(100).optional(),
        wait_s: z.number().min(0).max(MAX_WAIT_S).optional(),
        since: z.string().max(40).optional().describe('A cursor from an earlier list_inbox'),
      },
      outputSchema: { entries: z.array(entryView), cursor: z.string(), waited_out: z.boolean() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(deps.logger, async () => {
        const since = sinceOf(args.since);
        const started = new Date();
        const { entries, waitedOut } = await listInbox(deps, {
          projectId: args.project_id,
          limit: args.limit ?? 50,
          waitS: args.wait_s,
          since,
          signal: extra.signal,
        });
        const newest = Math.max(
          (since ?? started).getTime(),
          ...entries.map((e) => e.task.updatedAt.getTime()),
        );
        return toolResult({
          entries: entries.map(toInboxEntryView),
          cursor: iso(new Date(newest)) as string,
          waited_out: waitedOut,
        });
      }),
  );
}
