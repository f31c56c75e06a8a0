/** SQL for task_checks: the project's check command's result in a task's worktree (arenas). */
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export const CHECK_OUTCOMES = ['passed', 'failed', 'timeout', 'untrusted', 'error'] as const;
export type CheckOutcome = (typeof CHECK_OUTCOMES)[number];

export interface TaskCheck {
  taskId: string;
  outcome: CheckOutcome;
  exitCode: number | null;
  durationMs: number;
  outputTail: string;
  createdAt: Date;
}

export type NewTaskCheck = Omit<TaskCheck, 'createdAt'>;

/** Records (or, for a later attempt of the task, replaces) its check result. */
export async function recordTaskCheck(db: Queryable, c: NewTaskCheck): Promise<void> {
  await db.query(
    `INSERT INTO task_checks (task_id, outcome, exit_code, duration_ms, output_tail) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (task_id) DO UPDATE SET outcome = EXCLUDED.outcome, exit_code = EXCLUDED.exit_code,
       duration_ms = EXCLUDED.duration_ms, output_tail = EXCLUDED.output_tail, created_at = clock_timestamp()`,
    [c.taskId, c.outcome, c.exitCode, c.durationMs, c.outputTail],
  );
}

export async function listTaskChecks(db: Queryable, taskIds: readonly string[]): Promise<TaskCheck[]> {
  if (taskIds.length === 0) return [];
  const { rows } = await db.query('SELECT * FROM task_checks WHERE task_id = ANY($1::uuid[])', [taskIds]);
  return rows.map((r) => toCamel<TaskCheck>(r));
}
