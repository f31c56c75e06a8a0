import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { getTranscript } from '../services/transcripts.js';
import { iso, runTool, toolResult } from './result.js';
import { transcriptUri } from './views.js';

const MAX_LIMIT = 500;

export function registerGetTranscriptTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'get_transcript',
    {
      title: "Read a task's transcript",
      description:
        'What the agent did in a task, as ordered events: message and thought text, plan, tool calls ' +
        '(kind, title, paths, command, status, exit code), permission requests and answers, usage, errors. ' +
        `Paged: pass the returned next_after as after (limit at most ${MAX_LIMIT}). A long transcript keeps its ` +
        `first and last events; gaps says where the middle was cut. Readable markdown: ${transcriptUri('{task_id}')}.`,
      inputSchema: {
        task_id: z.uuid(),
        after: z.number().int().min(0).max(2_000_000_000).optional().describe('Events after this seq'),
        limit: z.number().int().min(1).max(MAX_LIMIT).optional(),
      },
      outputSchema: {
        task_id: z.string(),
        state: z.string(),
        now_doing: z.string().nullable(),
        events: z.array(
          z.object({
            seq: z.number(),
            kind: z.string(),
            at: z.string(),
            data: z.record(z.string(), z.unknown()),
          }),
        ),
        gaps: z.array(z.object({ after_seq: z.number(), before_seq: z.number(), missing: z.number() })),
        last_seq: z.number(),
        next_after: z.number().nullable(),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const page = await getTranscript(deps, args.task_id, args.after ?? 0, args.limit ?? 100);
        return toolResult({
          task_id: page.task.id,
          state: page.task.state,
          now_doing: page.task.nowDoing,
          events: page.events.map((e) => ({ seq: e.seq, kind: e.kind, at: iso(e.createdAt), data: e.data })),
          gaps: page.gaps.map((g) => ({
            after_seq: g.afterSeq,
            before_seq: g.beforeSeq,
            missing: g.missing,
          })),
          last_seq: page.lastSeq,
          next_after: page.nextAfter,
        });
      }),
  );
}
