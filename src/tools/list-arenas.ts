import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { listArenas } from '../services/arenas.js';
import { decodeCursor, encodeCursor } from '../services/changes.js';
import type { Deps } from '../services/deps.js';
import { arenaSummary, toArenaSummary } from './arena-views.js';
import { runTool, toolResult } from './result.js';

const listed = z.object({ ...arenaSummary.shape, contenders: z.number(), running: z.number() });

export function registerListArenasTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_arenas',
    {
      title: 'List arenas',
      description:
        'Arenas in creation order, optionally of one project; each with its contender count, how many are still ' +
        'queued or running, and the winner once decided. Paged by cursor; get_arena shows one in full.',
      inputSchema: {
        project_id: z.uuid().optional(),
        limit: z.number().int().min(1).max(200).optional(),
        cursor: z.string().max(100).optional(),
      },
      outputSchema: { arenas: z.array(listed), next_cursor: z.string().nullable() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const limit = args.limit ?? 50;
        const rows = await listArenas(deps, {
          ...(args.project_id ? { projectId: args.project_id } : {}),
          afterSeq: decodeCursor(args.cursor),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return toolResult({
          arenas: page.map((a) => ({ ...toArenaSummary(a), contenders: a.contenders, running: a.open })),
          next_cursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
        });
      }),
  );
}
