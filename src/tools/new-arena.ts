import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { MAX_CONTENDERS, MIN_CONTENDERS, newArena } from '../services/arenas.js';
import type { Deps } from '../services/deps.js';
import { AGENT_NAME, clientRoots, MAX_INPUT_CHARS, runTool, toolResult } from './result.js';

const contender = z
  .object({
    agent: AGENT_NAME.optional().describe('Which agent (default: the configured default agent)'),
    model: z.string().min(1).max(200).optional().describe('Model for the agent, in its own naming'),
    execution_path: z.string().max(20).optional().describe('"acp", "headless" or "serve", as in new_task'),
  })
  .strict();

export function registerNewArenaTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'new_arena',
    {
      title: 'Queue one task for several competing agents (best of N)',
      description:
        `Queues the same input for ${MIN_CONTENDERS}-${MAX_CONTENDERS} contenders (an agent, optionally a model and ` +
        "execution path each), each in its own session and worktree from the repository's current commit. When a " +
        "contender ends, the project's check command runs in its worktree. Follow with get_arena (wait_s) to see " +
        'them ranked side by side, then decide_arena to apply the winner.',
      inputSchema: {
        project: z
          .string()
          .min(1)
          .max(4096)
          .optional()
          .describe('Absolute path of a git repository or a project id'),
        input: z.string().min(1).max(MAX_INPUT_CHARS).describe('What every contender should do'),
        contenders: z.array(contender).min(MIN_CONTENDERS).max(MAX_CONTENDERS),
      },
      outputSchema: {
        arena_id: z.string(),
        base_commit: z.string(),
        task_ids: z.array(z.string()),
      },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const roots = clientRoots(server);
        const { arena, tasks } = await newArena(
          deps,
          {
            ...(args.project ? { project: args.project } : {}),
            input: args.input,
            contenders: args.contenders.map((c) => ({
              ...(c.agent ? { agent: c.agent } : {}),
              ...(c.model ? { model: c.model } : {}),
              ...(c.execution_path ? { executionPath: c.execution_path } : {}),
            })),
          },
          roots,
        );
        return toolResult({
          arena_id: arena.id,
          base_commit: arena.baseCommit,
          task_ids: tasks.map((t) => t.id),
        });
      }),
  );
}
