import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { queueTask } from '../services/tasks.js';
import { AGENT_NAME, clientRoots, MAX_INPUT_CHARS, runTool, toolResult } from './result.js';

const MAX_FEATURES = 32;
/** A value id an agent offers (model, mode, thought level, option): the agent checks it at run time. */
const CONFIG_VALUE = z.string().min(1).max(200);
const FEATURES = z
  .record(
    z.string().min(1).max(200),
    z.union([z.string().min(1).max(200), z.boolean()], {
      error: 'each feature is a value id (1 to 200 characters) or true/false',
    }),
    { error: (issue) => (issue.code === 'invalid_key' ? 'a feature id is 1 to 200 characters' : undefined) },
  )
  .refine((features) => Object.keys(features).length <= MAX_FEATURES, {
    error: `at most ${MAX_FEATURES} features`,
  });

const input = {
  project: z
    .string()
    .min(1)
    .max(4096)
    .optional()
    .describe(
      'Absolute path of a git repository (registered on first use) or a project id; defaults to the client root',
    ),
  input: z.string().min(1).max(MAX_INPUT_CHARS).describe('What the agent should do'),
  agent: AGENT_NAME.optional().describe(
    'Which agent runs it (opencode, claude, codex, gemini, qwen, or a configured one)',
  ),
  model: CONFIG_VALUE.optional().describe('Model for the agent, in its own naming'),
  mode: CONFIG_VALUE.optional().describe("The agent's mode (its ACP mode option, e.g. build or plan)"),
  thinking: CONFIG_VALUE.optional().describe(
    "The agent's thought level (its ACP thought_level option, e.g. low or high)",
  ),
  features: FEATURES.optional().describe(
    `Other ACP config options of the agent (at most ${MAX_FEATURES}), by option id: a value id, or true/false ` +
      'for an on/off option. A task asking for an option or value the agent lacks fails with E_INVALID_INPUT ' +
      'naming what it offers',
  ),
  parent_task_id: z.uuid().optional().describe('The task this one follows up'),
  session_id: z.uuid().optional().describe('Session to work in (its worktree); omit to start a new one'),
  chat_id: z.uuid().optional().describe('Chat (agent context) within the session; omit to start a new one'),
  execution_path: z
    .string()
    .max(20)
    .optional()
    .describe(
      'How the agent runs: "acp" (ACP over stdio, kept warm), "pty" (one CLI run per task printing JSON; ' +
        'built-in agents only, not with the ask permission policy; Qwen Code\'s is stored as "qwen"), "qwen" ' +
        '(qwen only: its headless run) or "opencode_server" (opencode only: its shared server). Aliases: ' +
        '"headless" = "pty", "serve" = "opencode_server". Default: "opencode_server" for opencode when the ' +
        'server is configured so, else "acp"',
    ),
  request_id: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe(
      'Your id for this call (e.g. a UUID). Sending new_task again with the same request_id for the same project ' +
        'within 24 hours returns the task the first call created (replayed: true) instead of queueing another',
    ),
  max_cost: z
    .number()
    .min(0)
    .max(1e9)
    .optional()
    .describe(
      "Budget: the task is stopped (E_BUDGET_EXCEEDED, its changes so far kept) once its agent's reported cost " +
        'passes this. Default: the project budget of the config file',
    ),
  max_tokens: z
    .number()
    .int()
    .min(0)
    .max(1e15)
    .optional()
    .describe('Budget in tokens (input + output as the agent reports them); as max_cost'),
};

const output = {
  task_id: z.string(),
  state: z.string(),
  project_id: z.string(),
  session_id: z.string(),
  chat_id: z.string(),
  agent: z.string(),
  replayed: z.boolean(),
};

export function registerNewTaskTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'new_task',
    {
      title: 'Queue a task for a coding agent',
      description:
        'Queues work for a coding agent and returns at once with the task id; the agent runs in a git worktree of ' +
        'the session. Follow with get_task (wait_s) and list_pending_changes.',
      inputSchema: input,
      outputSchema: output,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        // Only with request_id: that is what makes a retry safe.
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const roots = clientRoots(server);
        const q = await queueTask(
          deps,
          {
            project: args.project,
            input: args.input,
            agent: args.agent,
            model: args.model,
            mode: args.mode,
            thinking: args.thinking,
            features: args.features,
            parentTaskId: args.parent_task_id,
            sessionId: args.session_id,
            chatId: args.chat_id,
            executionPath: args.execution_path,
            requestId: args.request_id,
            maxCost: args.max_cost,
            maxTokens: args.max_tokens,
          },
          roots,
        );
        return toolResult({
          task_id: q.task.id,
          state: q.task.state,
          project_id: q.projectId,
          session_id: q.sessionId,
          chat_id: q.chatId,
          agent: q.task.agent ?? deps.config.defaultAgent,
          replayed: q.replayed,
        });
      }),
  );
}
