import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { Deps } from '../services/deps.js';
import { queueTask } from '../services/tasks.js';
import { AGENT_NAME, MAX_INPUT_CHARS, runTool, toolResult } from './result.js';

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
  model: z.string().min(1).max(200).optional().describe('Model for the agent, in its own naming'),
  parent_task_id: z.uuid().optional().describe('The task this one follows up'),
  session_id: z.uuid().optional().describe('Session to work in (its worktree); omit to start a new one'),
  chat_id: z.uuid().optional().describe('Chat (agent context) within the session; omit to start a new one'),
};

const output = {
  task_id: z.string(),
  state: z.string(),
  project_id: z.string(),
  session_id: z.string(),
  chat_id: z.string(),
  agent: z.string(),
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
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const roots = async () => {
          if (!server.server.getClientCapabilities()?.roots) return [];
          return (await server.server.listRoots(undefined, { timeout: 5000 })).roots;
        };
        const q = await queueTask(
          deps,
          {
            project: args.project,
            input: args.input,
            agent: args.agent,
            model: args.model,
            parentTaskId: args.parent_task_id,
            sessionId: args.session_id,
            chatId: args.chat_id,
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
        });
      }),
  );
}
