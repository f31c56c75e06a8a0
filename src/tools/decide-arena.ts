import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { decideArena } from '../services/arenas.js';
import type { Deps } from '../services/deps.js';
import { arenaSummary, toArenaSummary } from './arena-views.js';
import { runTool, toolResult } from './result.js';

const NONE = 'none';

export function registerDecideArenaTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'decide_arena',
    {
      title: "Pick an arena's winner (or none)",
      description:
        "winner_task_id: a contender's task id, whose pending changes are applied to the repository as one batch " +
        "(all or nothing: if one cannot be applied, none is, and the arena stays undecided); every other contender's " +
        `pending changes are rejected. "${NONE}" rejects them all. Every contender must have finished.`,
      inputSchema: {
        arena_id: z.uuid(),
        winner_task_id: z
          .string()
          .max(36)
          .refine((w) => w === NONE || z.uuid().safeParse(w).success, `a contender's task id, or "${NONE}"`)
          .describe(`A contender's task id, or "${NONE}"`),
      },
      outputSchema: { ...arenaSummary.shape, applied: z.number(), rejected: z.number() },
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const winner = args.winner_task_id === NONE ? null : args.winner_task_id;
        const d = await decideArena(deps, args.arena_id, winner);
        return toolResult({ ...toArenaSummary(d.arena), applied: d.applied, rejected: d.rejected });
      }),
  );
}
