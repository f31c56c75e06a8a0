/** The public JSON shapes of rows, shared by the tools that return them. */
import { z } from 'zod';
import type { AgentSession } from '../db/agent-sessions.js';
import type { PendingChange, Task } from '../db/rows.js';
import { iso, isoSchema } from './result.js';

export const taskView = z.object({
  task_id: z.string(),
  project_id: z.string(),
  session_id: z.string().nullable(),
  chat_id: z.string().nullable(),
  parent_task_id: z.string().nullable(),
  state: z.string(),
  agent: z.string().nullable(),
  model: z.string().nullable(),
  input: z.string(),
  output_summary: z.string().nullable(),
  error_code: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number(),
  cost_tokens: z.number().nullable(),
  /** What the agent reported (null: nothing), the cost in cost_currency; the budget (null: none). */
  input_tokens: z.number().nullable().optional(),
  output_tokens: z.number().nullable().optional(),
  cost: z.number().nullable().optional(),
  cost_currency: z.string().optional(),
  max_cost: z.number().nullable().optional(),
  max_tokens: z.number().nullable().optional(),
  worktree_path: z.string().nullable(),
  created_at: isoSchema,
  started_at: isoSchema,
  ended_at: isoSchema,
  now_doing: z.string().nullable(),
});

const INPUT_PREVIEW = 2000;

export function toTaskView(t: Task): z.infer<typeof taskView> {
  return {
    task_id: t.id,
    project_id: t.projectId,
    session_id: t.sessionId,
    chat_id: t.chatId,
    parent_task_id: t.parentTaskId,
    state: t.state,
    agent: t.agent,
    model: t.model,
    input: t.input.length > INPUT_PREVIEW ? `${t.input.slice(0, INPUT_PREVIEW)}… (truncated)` : t.input,
    output_summary: t.outputSummary,
    error_code: t.errorCode,
    error: t.lastError,
    attempts: t.attempts,
    cost_tokens: t.costTokens,
    input_tokens: t.inputTokens ?? null,
    output_tokens: t.outputTokens ?? null,
    cost: t.cost ?? null,
    cost_currency: t.costCurrency ?? 'USD',
    max_cost: t.maxCost ?? null,
    max_tokens: t.maxTokens ?? null,
    worktree_path: t.worktreePath,
    created_at: iso(t.createdAt),
    started_at: iso(t.startedAt),
    ended_at: iso(t.endedAt),
    // The last thing the agent did is only "now" while the task runs.
    now_doing: t.state === 'running' ? (t.nowDoing ?? null) : null,
  };
}

export function transcriptUri(taskId: string): string {
  return `boocoder://tasks/${taskId}/transcript`;
}

export const DIFF_PREVIEW_BYTES = 16 * 1024;

export const changeView = z.object({
  change_id: z.string(),
  file_path: z.string(),
  operation: z.string(),
  status: z.string(),
  agent: z.string().nullable(),
  task_id: z.string().nullable(),
  session_id: z.string(),
  created_at: isoSchema,
  diff: z.string(),
  diff_truncated: z.boolean(),
  diff_bytes: z.number(),
  diff_uri: z.string(),
});

export function changeDiffUri(id: string): string {
  return `boocoder://changes/${id}/diff`;
}

export function toChangeView(c: PendingChange): z.infer<typeof changeView> {
  const truncated = c.diff.length > DIFF_PREVIEW_BYTES;
  return {
    change_id: c.id,
    file_path: c.filePath,
    operation: c.operation,
    status: c.status,
    agent: c.agent,
    task_id: c.taskId,
    session_id: c.sessionId,
    created_at: iso(c.createdAt),
    diff: truncated
      ? `${c.diff.slice(0, DIFF_PREVIEW_BYTES)}\n… (truncated; read ${changeDiffUri(c.id)})`
      : c.diff,
    diff_truncated: truncated,
    diff_bytes: c.diffBytes,
    diff_uri: changeDiffUri(c.id),
  };
}

export const agentSessionView = z.object({
  chat_id: z.string(),
  agent: z.string(),
  backend: z.string(),
  status: z.string(),
  has_session: z.boolean(),
  agent_session_id: z.string().nullable(),
  last_active_at: isoSchema,
  input_tokens: z.number(),
  output_tokens: z.number(),
  cost: z.number(),
});

export function toAgentSessionView(s: AgentSession): z.infer<typeof agentSessionView> {
  return {
    chat_id: s.chatId,
    agent: s.agent,
    backend: s.backend,
    status: s.status,
    has_session: s.agentSessionId !== null,
    agent_session_id: s.agentSessionId,
    last_active_at: iso(s.lastActiveAt),
    input_tokens: Number(s.inputTokens),
    output_tokens: Number(s.outputTokens),
    cost: Number(s.cost),
  };
}
