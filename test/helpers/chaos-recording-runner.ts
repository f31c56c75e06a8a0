/**
 * A task runner that does no work but records every claim it gets in the table chaos_claims, so a
 * race over thousands of tasks can be checked afterwards: each task claimed once per attempt, none
 * lost. It also notices (and records) a task it is given while it is already running it.
 */
import type { Db } from '../../src/db/db.js';
import { finishTask } from '../../src/db/tasks.js';
import type { TaskRunner } from '../../src/dispatcher/task-runner.js';

export const CHAOS_CLAIMS_DDL = `CREATE TABLE IF NOT EXISTS chaos_claims (
  task_id UUID NOT NULL,
  attempt INTEGER NOT NULL,
  owner TEXT NOT NULL,
  overlapping BOOLEAN NOT NULL DEFAULT false,
  claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)`;

export function recordingRunner(db: Db, holdMs = 0): TaskRunner {
  const running = new Set<string>();
  return async (task, ctx) => {
    const overlapping = running.has(task.id);
    running.add(task.id);
    try {
      await db.query(
        'INSERT INTO chaos_claims (task_id, attempt, owner, overlapping) VALUES ($1, $2, $3, $4)',
        [task.id, task.attempts, ctx.owner, overlapping],
      );
      if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
      const finished = await finishTask(db, task.id, ctx.owner, {
        state: 'completed',
        outputSummary: null,
        costTokens: null,
        errorCode: null,
        lastError: null,
      });
      if (!finished) throw new Error(`task ${task.id} was no longer ours to finish`);
    } finally {
      if (!overlapping) running.delete(task.id);
    }
  };
}
