/** The public JSON shapes of arenas, shared by the arena tools. */
import { z } from 'zod';
import type { Arena } from '../db/arenas.js';
import type { ArenaView, ContenderView } from '../services/arenas.js';
import { iso, isoSchema } from './result.js';

export const arenaSummary = z.object({
  arena_id: z.string(),
  project_id: z.string(),
  base_commit: z.string(),
  winner_task_id: z.string().nullable(),
  decided_at: isoSchema,
  created_at: isoSchema,
});

export function toArenaSummary(a: Arena): z.infer<typeof arenaSummary> {
  return {
    arena_id: a.id,
    project_id: a.projectId,
    base_commit: a.baseCommit,
    winner_task_id: a.winnerTaskId,
    decided_at: iso(a.decidedAt),
    created_at: iso(a.createdAt),
  };
}

const checkView = z
  .object({
    outcome: z.string(),
    exit_code: z.number().nullable(),
    duration_ms: z.number(),
    output_tail: z.string(),
  })
  .nullable();

export const contenderView = z.object({
  rank: z.number(),
  task_id: z.string(),
  session_id: z.string().nullable(),
  agent: z.string().nullable(),
  model: z.string().nullable(),
  execution_path: z.string().nullable(),
  state: z.string(),
  error_code: z.string().nullable(),
  error: z.string().nullable(),
  check: checkView,
  files_changed: z.number(),
  lines_added: z.number(),
  lines_removed: z.number(),
  pending_changes: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  cost: z.number(),
  duration_ms: z.number().nullable(),
});

export function toContenderView(v: ContenderView): z.infer<typeof contenderView> {
  const t = v.task;
  return {
    rank: v.rank,
    task_id: t.id,
    session_id: t.sessionId,
    agent: t.agent,
    model: t.model,
    execution_path: t.executionPath,
    state: t.state,
    error_code: t.errorCode,
    error: t.lastError,
    check: v.check
      ? {
          outcome: v.check.outcome,
          exit_code: v.check.exitCode,
          duration_ms: v.check.durationMs,
          output_tail: v.check.outputTail,
        }
      : null,
    files_changed: v.filesChanged,
    lines_added: v.linesAdded,
    lines_removed: v.linesRemoved,
    pending_changes: v.pendingChanges,
    input_tokens: v.inputTokens,
    output_tokens: v.outputTokens,
    cost: v.cost,
    duration_ms: v.durationMs,
  };
}

export const arenaViewShape = {
  ...arenaSummary.shape,
  state: z.string(),
  input: z.string(),
  contenders: z.array(contenderView),
};

const INPUT_PREVIEW = 2000;

export function toArenaView(v: ArenaView): Record<string, unknown> {
  const input = v.arena.input;
  return {
    ...toArenaSummary(v.arena),
    state: v.state,
    input: input.length > INPUT_PREVIEW ? `${input.slice(0, INPUT_PREVIEW)}… (truncated)` : input,
    contenders: v.contenders.map(toContenderView),
  };
}
