import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { BoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { getUsage, USAGE_GROUPS, type UsageGroup } from '../services/usage.js';
import { runTool, toolResult } from './result.js';

const MAX_ROWS = 1000;

const row = z.object({
  agent: z.string().nullable(),
  model: z.string().nullable(),
  day: z.string().nullable(),
  currency: z.string(),
  tasks: z.number(),
  unreported: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  cost: z.number(),
});

function parseGroups(text: string | undefined): UsageGroup[] {
  if (text === undefined) return [...USAGE_GROUPS];
  const groups = text
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  for (const g of groups) {
    if (!(USAGE_GROUPS as readonly string[]).includes(g))
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `group_by takes ${USAGE_GROUPS.join(', ')} (comma separated), not ${g.slice(0, 40)}`,
      );
  }
  return groups as UsageGroup[];
}

export function registerGetUsageTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'get_usage',
    {
      title: 'Tokens and cost of tasks',
      description:
        "Sums the tokens and cost that tasks' agents reported, per agent, model and day (UTC, of the task's end), " +
        'each currency apart. `unreported` counts tasks whose agent reported nothing (codex-acp reports no usage). ' +
        'Filter by project (id or repository path) and since (ISO 8601, by task creation).',
      inputSchema: {
        project: z.string().min(1).max(4096).optional().describe('A project id or a repository path'),
        since: z.iso
          .datetime({ offset: true })
          .optional()
          .describe('Only tasks created at or after this time'),
        group_by: z
          .string()
          .max(40)
          .optional()
          .describe(
            `Comma-separated subset of ${USAGE_GROUPS.join(', ')}; default all three; "" for one total`,
          ),
      },
      outputSchema: { usage: z.array(row) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const rows = await getUsage(deps, {
          ...(args.project !== undefined ? { project: args.project } : {}),
          ...(args.since !== undefined ? { since: new Date(args.since) } : {}),
          groupBy: parseGroups(args.group_by),
          limit: MAX_ROWS,
        });
        return toolResult({
          usage: rows.map((r) => ({
            agent: r.agent,
            model: r.model,
            day: r.day,
            currency: r.currency,
            tasks: r.tasks,
            unreported: r.unreported,
            input_tokens: r.inputTokens,
            output_tokens: r.outputTokens,
            cost: r.cost,
          })),
        });
      }),
  );
}
