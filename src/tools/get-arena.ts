import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { getArena } from '../services/arenas.js';
import type { Deps } from '../services/deps.js';
import { arenaViewShape, toArenaView } from './arena-views.js';
import { MAX_WAIT_S } from './get-task.js';
import { runTool, toolResult } from './result.js';

export function registerGetArenaTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'get_arena',
    {
      title: 'Read an arena: its contenders side by side, ranked',
      description:
        'State (running, finished, decided), and per contender: state, check result (outcome, exit code, duration, ' +
        'output tail), files and lines changed, tokens, cost, duration and rank. Ranking: contenders that completed ' +
        'with changes first, then check passed, then smaller diff, then lower cost. With wait_s (at most ' +
        `${MAX_WAIT_S}) it first waits for every contender to finish.`,
      inputSchema: {
        arena_id: z.uuid(),
        wait_s: z.number().min(0).max(MAX_WAIT_S).optional().describe('Seconds to wait for the contenders'),
      },
      outputSchema: arenaViewShape,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(deps.logger, async () =>
        toolResult(
          toArenaView(
            await getArena(deps, args.arena_id, {
              ...(args.wait_s ? { waitS: args.wait_s } : {}),
              signal: extra.signal,
            }),
          ),
        ),
      ),
  );
}
