/**
 * SQL for the tasks table: lease, finish, cancel (inserts are in task-inserts.ts, the dispatcher's
 * claims in task-claims.ts). Every value is a $n parameter.
 */
import { TASKS_CANCEL_CHANNEL, TASKS_DONE_CHANNEL } from './channels.js';
import type { Db, Queryable } from './db.js';
import { expirePendingRequests } from './permission-requests.js';
import { type Task, type TaskState, toCamel } from './rows.js';
import { finishAndClaimTasks } from './task-claims.js';

/** A task with the number of pending changes it produced, in one round trip. */
export async function findTaskWithChangeCount(
  db: Queryable,
  id: string,
): Promise<{ task: Task; pendingChanges: number } | null> {
  const { rows } = await db.query(
    `SELECT t.*, (SELECT count(*)::int FROM pending_changes c WHERE c.task_id = t.id) AS pending_changes_count
       FROM tasks t WHERE t.id = $1`,
    [id],
    // get_task's read, the cheapest tool call: prepared once per connection, it takes half the time.
    { name: 'boocoder_find_task_with_change_count' },
  );
  const row = rows[0];
  if (!row) return null;
  const { pending_changes_count: count, ...task } = row;
  return { task: toCamel<Task>(task), pendingChanges: Number(count) };
}

export async function findTask(db: Queryable, id: string): Promise<Task | null> {
  const { rows } = await db.query('SELECT * FROM tasks WHERE id = $1', [id], { name: 'boocoder_find_task' });
  return rows[0] ? toCamel<Task>(rows[0]) : null;
}

export async function countQueuedTasks(db: Queryable, projectId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasks WHERE project_id = $1 AND state IN ('pending', 'running', 'blocked')`,
    [projectId],
  );
  return rows[0]?.n ?? 0;
}

export interface TaskFilter {
  projectId?: string;
  sessionId?: string;
  state?: TaskState;
  agent?: string;
  /** Only the sub-tasks queued under this task. */
  parentTaskId?: string;
  afterSeq?: number;
  limit: number;
}

export async function listTasks(db: Queryable, f: TaskFilter): Promise<Task[]> {
  const { rows } = await db.query(
    `SELECT * FROM tasks
      WHERE ($1::uuid IS NULL OR project_id = $1) AND ($2::uuid IS NULL OR session_id = $2)
        AND ($3::text IS NULL OR state = $3) AND ($4::text IS NULL OR agent = $4)
        AND seq > $5 AND ($7::uuid IS NULL OR parent_task_id = $7)
      ORDER BY seq LIMIT $6`,
    [
      f.projectId ?? null,
      f.sessionId ?? null,
      f.state ?? null,
      f.agent ?? null,
      f.afterSeq ?? 0,
      f.limit,
      f.parentTaskId ?? null,
    ],
  );
  return rows.map((r) => toCamel<Task>(r));
}

/** Claims the oldest claimable pending task (see finishAndClaimTasks), or null when there is none. */
export async function claimNextTask(db: Queryable, owner: string, leaseMs: number): Promise<Task | null> {
  const { tasks } = await finishAndClaimTasks(db, owner, leaseMs, {
    finishes: [],
    claim: true,
    freeSlots: 1,
  });
  return tasks[0] ?? null;
}

/** Extends the leases of the given running tasks; returns the ids this owner still holds. */
export async function renewLeases(
  db: Queryable,
  owner: string,
  ids: string[],
  leaseMs: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE tasks SET lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
      WHERE id = ANY($2::uuid[]) AND lease_owner = $1 AND state IN ('running', 'blocked')
      RETURNING id`,
    [owner, ids, leaseMs],
    { name: 'boocoder_renew_leases' },
  );
  return rows.map((r) => r.id);
}

/** The agent process an expired task's run recorded (all null when it recorded none). */
export interface ExpiredLease {
  id: string;
  agentPid: number | null;
  agentPidStarted: number | null;
  agentHost: string | null;
  agentBootId: string | null;
}

const RELEASE_BATCH = 100;

/**
 * Tasks whose lease expired belong to a dispatcher that died: back to pending for another attempt,
 * or failed (E_LEASE_EXPIRED) once the attempts are used up. Returns how many were released.
 *
 * `options.beforeRelease` runs while the expired rows are still locked and still `running`, so no other
 * dispatcher can claim one of them until it returns: that is where the dead dispatcher's agent is
 * killed, before a new attempt resets the worktree it may still be writing to. Rows another sweeper
 * holds are skipped (SKIP LOCKED): that sweeper releases them.
 */
export interface ReleaseExpiredOptions {
  /** Runs with the expired rows locked, before they are released (see above). */
  beforeRelease?: (expired: ExpiredLease[]) => Promise<void>;
  /**
   * The sweeping dispatcher's own running tasks: it is alive, so an expired lease of its own only
   * means its heartbeat is late (a stalled event loop), and it must not start its own task again.
   */
  keep?: { owner: string; ids: string[] };
}

export async function releaseExpiredLeases(db: Db, options: ReleaseExpiredOptions = {}): Promise<number> {
  let released = 0;
  for (;;) {
    const batch = await db.transaction(async (tx) => {
      const { rows } = await tx.query(
        `SELECT id, agent_pid, agent_pid_started, agent_host, agent_boot_id FROM tasks
          WHERE state IN ('running', 'blocked') AND lease_expires_at < clock_timestamp()
            AND NOT (lease_owner = $2 AND id = ANY($3::uuid[]))
          ORDER BY seq LIMIT $1
          FOR UPDATE SKIP LOCKED`,
        [RELEASE_BATCH, options.keep?.owner ?? '', options.keep?.ids ?? []],
      );
      const expired = rows.map((r) => toCamel<ExpiredLease>(r));
      if (expired.length === 0) return 0;
      await options.beforeRelease?.(expired);
      const { rowCount } = await tx.query(
        `UPDATE tasks SET
            state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
            error_code = CASE WHEN attempts >= max_attempts THEN 'E_LEASE_EXPIRED' ELSE error_code END,
            last_error = 'the dispatcher running this task stopped (lease expired)',
            ended_at = CASE WHEN attempts >= max_attempts THEN clock_timestamp() ELSE NULL END,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
          WHERE id = ANY($1::uuid[]) AND state IN ('running', 'blocked')`,
        [expired.map((e) => e.id)],
      );
      // The agent that asked is gone: nobody may answer its requests any more.
      await expirePendingRequests(
        tx,
        expired.map((e) => e.id),
      );
      return rowCount;
    });
    released += batch;
    if (batch < RELEASE_BATCH) return released;
  }
}

export interface TaskOutcome {
  state: Exclude<TaskState, 'pending' | 'running'>;
  outputSummary: string | null;
  costTokens: number | null;
  errorCode: string | null;
  lastError: string | null;
}

/**
 * Finishes a task only if this owner still holds it: a dispatcher that lost its lease changes
 * nothing. NOTIFYs tasks_done with its id when it finished it.
 */
export async function finishTask(db: Queryable, id: string, owner: string, o: TaskOutcome): Promise<boolean> {
  const { rows } = await db.query(
    `WITH finished AS (
       UPDATE tasks SET state = $3, output_summary = $4, cost_tokens = $5, error_code = $6, last_error = $7,
              ended_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
        WHERE id = $1 AND lease_owner = $2 AND state IN ('running', 'blocked')
        RETURNING id)
     SELECT pg_notify($8, id::text) FROM finished`,
    [id, owner, o.state, o.outputSummary, o.costTokens, o.errorCode, o.lastError, TASKS_DONE_CHANNEL],
    { name: 'boocoder_finish_task' },
  );
  return rows.length === 1;
}

/** Hands a running task back to the queue (shutdown): it keeps its attempt count. */
export async function releaseTask(db: Queryable, id: string, owner: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE tasks SET state = 'pending', attempts = greatest(attempts - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL, started_at = NULL, updated_at = clock_timestamp()
      WHERE id = $1 AND lease_owner = $2 AND state IN ('running', 'blocked')`,
    [id, owner],
  );
  return rowCount === 1;
}

/** Records the agent process of the owner's running attempt; false when the owner lost the task. */
export async function recordAgentProcess(
  db: Queryable,
  id: string,
  owner: string,
  agent: { pid: number; startTicks: number; host: string; bootId: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE tasks SET agent_pid = $3, agent_pid_started = $4, agent_host = $5, agent_boot_id = $6,
            updated_at = clock_timestamp()
      WHERE id = $1 AND lease_owner = $2 AND state = 'running'`,
    [id, owner, agent.pid, agent.startTicks, agent.host, agent.bootId],
  );
  return rowCount === 1;
}

export async function setTaskWorktree(db: Queryable, id: string, worktreePath: string): Promise<void> {
  await db.query('UPDATE tasks SET worktree_path = $2, updated_at = clock_timestamp() WHERE id = $1', [
    id,
    worktreePath,
  ]);
}

/**
 * Cancels a task: a pending one (or a blocked one no dispatcher holds) ends at once; a running or
 * leased blocked one is marked so its dispatcher stops the agent first (it notices through its
 * heartbeat or the tasks_cancel notification sent here) — ending it here would let the session's
 * next task start in the worktree while that agent still runs. Returns the new row.
 */
export async function requestTaskCancel(db: Queryable, id: string): Promise<Task | null> {
  const { rows } = await db.query(
    `UPDATE tasks SET
        state = CASE WHEN state = 'pending' OR (state = 'blocked' AND lease_owner IS NULL)
                     THEN 'cancelled' ELSE state END,
        ended_at = CASE WHEN state = 'pending' OR (state = 'blocked' AND lease_owner IS NULL)
                        THEN clock_timestamp() ELSE ended_at END,
        cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp()), updated_at = clock_timestamp()
      WHERE id = $1 AND state IN ('pending', 'running', 'blocked')
      RETURNING *`,
    [id],
  );
  const task = rows[0] ? toCamel<Task>(rows[0]) : null;
  if (task?.state === 'running' || task?.state === 'blocked')
    await db.query('SELECT pg_notify($1, $2)', [TASKS_CANCEL_CHANNEL, id]);
  return task;
}

/**
 * The sub-tasks, their sub-tasks and so on of a task that are still live (pending, running,
 * blocked). UNION, not UNION ALL: a cycle in parent_task_id cannot make the recursion endless.
 */
export async function liveDescendantIds(db: Queryable, id: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `WITH RECURSIVE d(id) AS (
       SELECT id FROM tasks WHERE parent_task_id = $1
       UNION SELECT t.id FROM tasks t JOIN d ON t.parent_task_id = d.id)
     SELECT t.id FROM tasks t JOIN d ON t.id = d.id
      WHERE t.state IN ('pending', 'running', 'blocked') ORDER BY t.seq`,
    [id],
  );
  return rows.map((r) => r.id);
}

/** How many ancestors a task has (0 for a top-level task), and how many children it has queued. */
export async function familyCounts(db: Queryable, id: string): Promise<{ depth: number; children: number }> {
  const { rows } = await db.query<{ depth: string; children: string }>(
    `WITH RECURSIVE a(id, parent, n) AS (
       SELECT id, parent_task_id, 0 FROM tasks WHERE id = $1
       UNION ALL SELECT t.id, t.parent_task_id, a.n + 1 FROM tasks t JOIN a ON t.id = a.parent WHERE a.n < 100)
     SELECT (SELECT max(n) FROM a) AS depth,
            (SELECT count(*) FROM tasks WHERE parent_task_id = $1) AS children`,
    [id],
  );
  return { depth: Number(rows[0]?.depth ?? 0), children: Number(rows[0]?.children ?? 0) };
}

/** Of the given running task ids, those whose cancellation was requested. */
export async function findCancelRequested(db: Queryable, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND cancel_requested_at IS NOT NULL`,
    [ids],
  );
  return rows.map((r) => r.id);
}
