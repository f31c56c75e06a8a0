/**
 * The usage columns of tasks (migration 0009): what a task's agent reported, and the sums get_usage
 * reads. Every value is a $n parameter; the grouping is chosen by flags, so the SQL text is fixed.
 */
import type { Queryable } from './db.js';

export interface TaskUsage {
  inputTokens: number;
  outputTokens: number;
  cost?: number;
  currency?: string;
}

/** Records what the task's agent reported (no report: the columns stay NULL, "unknown"). */
export async function recordTaskUsage(
  db: Queryable,
  taskId: string,
  u: TaskUsage | undefined,
): Promise<void> {
  if (!u) return;
  await db.query(
    `UPDATE tasks SET input_tokens = $2, output_tokens = $3, cost = $4, cost_currency = $5 WHERE id = $1`,
    [taskId, u.inputTokens, u.outputTokens, u.cost ?? null, (u.currency ?? 'USD').slice(0, 16)],
  );
}

export interface UsageFilter {
  projectId: string | null;
  since: Date | null;
  byAgent: boolean;
  byModel: boolean;
  byDay: boolean;
  limit: number;
}

export interface UsageRow {
  agent: string | null;
  model: string | null;
  /** YYYY-MM-DD (UTC) of the task's end (its creation while it has not ended). */
  day: string | null;
  currency: string;
  tasks: number;
  /** Tasks whose agent reported no usage at all (codex-acp reports none). */
  unreported: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
}

/** Sums per the chosen groups; never across currencies. Newest day first, then agent and model. */
export async function sumTaskUsage(db: Queryable, f: UsageFilter): Promise<UsageRow[]> {
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT CASE WHEN $3 THEN agent END AS agent,
            CASE WHEN $4 THEN model END AS model,
            CASE WHEN $5 THEN to_char(coalesce(ended_at, created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') END AS day,
            cost_currency AS currency,
            count(*)::int AS tasks,
            count(*) FILTER (WHERE input_tokens IS NULL AND cost IS NULL)::int AS unreported,
            coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
            coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
            coalesce(sum(cost), 0)::double precision AS cost
       FROM tasks
      WHERE ($1::uuid IS NULL OR project_id = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)
      GROUP BY 1, 2, 3, 4
      ORDER BY 3 DESC NULLS LAST, 1 NULLS FIRST, 2 NULLS FIRST, 4
      LIMIT $6`,
    [f.projectId, f.since, f.byAgent, f.byModel, f.byDay, f.limit],
  );
  return rows.map((r) => ({
    agent: (r.agent as string | null) ?? null,
    model: (r.model as string | null) ?? null,
    day: (r.day as string | null) ?? null,
    currency: String(r.currency),
    tasks: Number(r.tasks),
    unreported: Number(r.unreported),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    cost: Number(r.cost),
  }));
}
