/**
 * What the soak proves after the run, from the rows and from the agents' own record: every task the
 * feeder inserted reached `completed` exactly once (attempts = 1, one captured change), and no task
 * was run twice. The run count does not trust the dispatcher: each task's script makes the agent
 * append the task's id to one log file, so a second run of a task is a second line.
 */
import { readFile } from 'node:fs/promises';
import type { Db } from '../src/db/db.js';
import { type Distribution, distribution } from './stats.js';

export interface SoakOutcome {
  inserted: number;
  /** Completed, attempts = 1, run once by an agent, one pending change captured. */
  completedOnce: number;
  /** Ended but not completed, never run by an agent, or its change was not captured. */
  lost: number;
  /** Still pending or running when the soak's deadline passed: neither lost nor completed yet. */
  unfinished: number;
  /** Run by an agent more than once, or claimed more than once (attempts ≠ 1). */
  duplicated: number;
  /** Lines in the runs log for ids the feeder never inserted (counted in `duplicated` too). */
  unknownRuns: number;
  /** created_at → started_at of the tasks that started, in ms (PostgreSQL's clock at both ends). */
  pickup: Distribution;
  /** First insert → last task ended, in seconds. */
  spanS: number;
  tasksPerSecond: number;
  /** The distinct agent processes that ran a task (each is one cold start). */
  agentPids: number[];
  byState: Record<string, number>;
  /** started_at → ended_at of the tasks that ended, in ms. */
  runMs: Distribution | null;
  /** How many tasks ended with each error (code and message), for a run that lost some. */
  errors: Record<string, number>;
}

interface TaskRow {
  id: string;
  state: string;
  attempts: number;
  pickup_ms: number | null;
  created_ms: number;
  ended_ms: number | null;
  run_ms: number | null;
  error: string | null;
  output_summary: string | null;
  changes: number;
}

async function readRuns(runsLog: string): Promise<Map<string, number>> {
  let text = '';
  try {
    text = await readFile(runsLog, 'utf8');
  } catch (err) {
    // No agent ran at all: every task then counts as lost below.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const runs = new Map<string, number>();
  for (const line of text.split('\n')) if (line) runs.set(line, (runs.get(line) ?? 0) + 1);
  return runs;
}

export async function verifySoak(
  db: Db,
  fed: { taskIds: readonly string[]; unfinished: readonly string[] },
  runsLog: string,
): Promise<SoakOutcome> {
  const { taskIds } = fed;
  const unfinishedIds = new Set(fed.unfinished);
  const { rows } = await db.query<TaskRow>(
    `SELECT t.id, t.state, t.attempts, t.output_summary,
            (extract(epoch FROM t.started_at - t.created_at) * 1000)::float8 AS pickup_ms,
            (extract(epoch FROM t.created_at) * 1000)::float8 AS created_ms,
            (extract(epoch FROM t.ended_at) * 1000)::float8 AS ended_ms,
            (extract(epoch FROM t.ended_at - t.started_at) * 1000)::float8 AS run_ms,
            nullif(concat_ws(': ', t.error_code, t.last_error), '') AS error,
            (SELECT count(*) FROM pending_changes c WHERE c.task_id = t.id)::int AS changes
       FROM tasks t WHERE t.id = ANY($1::uuid[])`,
    [taskIds],
  );
  const runs = await readRuns(runsLog);
  const inserted = new Set(taskIds);
  const unknownRuns = [...runs.entries()].filter(([id]) => !inserted.has(id)).reduce((a, [, n]) => a + n, 0);
  const byState: Record<string, number> = {};
  const pids = new Set<string>();
  const errors: Record<string, number> = {};
  let completedOnce = 0;
  let duplicated = unknownRuns;
  let lost = taskIds.length - rows.length;
  let unfinished = 0;
  for (const r of rows) {
    byState[r.state] = (byState[r.state] ?? 0) + 1;
    const ranTimes = runs.get(r.id) ?? 0;
    // Each task counts in one column at most: a task run twice is duplicated, not also lost.
    if (ranTimes > 1 || r.attempts > 1) duplicated++;
    else if (unfinishedIds.has(r.id) && (r.state === 'pending' || r.state === 'running')) unfinished++;
    else if (r.state === 'completed' && r.attempts === 1 && ranTimes === 1 && r.changes === 1)
      completedOnce++;
    else lost++;
    const pid = /^pid:(\d+)$/m.exec(r.output_summary ?? '')?.[1];
    if (pid) pids.add(pid);
    if (r.error) errors[r.error] = (errors[r.error] ?? 0) + 1;
  }
  const started = rows.flatMap((r) => (r.pickup_ms === null ? [] : [r.pickup_ms]));
  if (started.length === 0) throw new Error('no soak task ever started: are the dispatchers running?');
  const ran = rows.flatMap((r) => (r.run_ms === null ? [] : [r.run_ms]));
  const firstCreated = Math.min(...rows.map((r) => r.created_ms));
  const lastEnded = Math.max(...rows.flatMap((r) => (r.ended_ms === null ? [] : [r.ended_ms])));
  const spanS = (lastEnded - firstCreated) / 1000;
  return {
    inserted: taskIds.length,
    completedOnce,
    lost,
    unfinished,
    duplicated,
    unknownRuns,
    pickup: distribution(started),
    spanS,
    tasksPerSecond: completedOnce / spanS,
    agentPids: [...pids].map(Number),
    byState,
    runMs: ran.length > 0 ? distribution(ran) : null,
    errors,
  };
}
