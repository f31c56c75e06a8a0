/**
 * SQL for permission_requests, and the task state changes that go with them: a task is `blocked`
 * exactly while one of its requests is pending. Every value is a $n parameter. Statements that touch
 * a request and its task lock the task row first, so a concurrent answer and block never interleave.
 */
import { PERMISSION_ANSWERS_CHANNEL, PERMISSION_REQUESTS_CHANNEL, TASKS_DONE_CHANNEL } from './channels.js';
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export const PERMISSION_REQUEST_STATES = ['pending', 'answered', 'cancelled', 'expired'] as const;
export type PermissionRequestState = (typeof PERMISSION_REQUEST_STATES)[number];

export interface StoredPermissionOption {
  optionId: string;
  name: string;
  kind: string;
}

export interface StoredLocation {
  path: string;
  line?: number;
}

export interface PermissionRequest {
  id: string;
  taskId: string;
  sessionId: string | null;
  agent: string;
  toolCallId: string | null;
  title: string | null;
  kind: string | null;
  locations: StoredLocation[];
  options: StoredPermissionOption[];
  state: PermissionRequestState;
  chosenOptionId: string | null;
  seq: number;
  createdAt: Date;
  answeredAt: Date | null;
  updatedAt: Date;
}

export interface NewPermissionRequest {
  taskId: string;
  agent: string;
  toolCallId: string | null;
  title: string | null;
  kind: string | null;
  locations: StoredLocation[];
  options: StoredPermissionOption[];
}

const toRequest = (row: Record<string, unknown>) => toCamel<PermissionRequest>(row);

/**
 * Blocks the owner's task and stores the request, in one transaction (`tx`). Null, with nothing
 * stored, when the owner no longer holds the task or its cancellation was requested: the agent is
 * then answered at once instead of waiting for a human who can no longer answer.
 */
export async function insertRequestBlockingTask(
  tx: Queryable,
  owner: string,
  r: NewPermissionRequest,
): Promise<PermissionRequest | null> {
  const blocked = await tx.query<{ session_id: string | null }>(
    `UPDATE tasks SET state = 'blocked', updated_at = clock_timestamp()
      WHERE id = $1 AND lease_owner = $2 AND state IN ('running', 'blocked') AND cancel_requested_at IS NULL
      RETURNING session_id`,
    [r.taskId, owner],
  );
  const task = blocked.rows[0];
  if (!task) return null;
  const { rows } = await tx.query(
    `INSERT INTO permission_requests (task_id, session_id, agent, tool_call_id, title, kind, locations, options)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) RETURNING *`,
    [
      r.taskId,
      task.session_id,
      r.agent,
      r.toolCallId,
      r.title,
      r.kind,
      JSON.stringify(r.locations),
      JSON.stringify(r.options),
    ],
  );
  const request = toRequest(rows[0] as Record<string, unknown>);
  // tasks_done wakes get_task waiters: `blocked` is a state a waiting client must see.
  await tx.query('SELECT pg_notify($1, $2), pg_notify($3, $4)', [
    PERMISSION_REQUESTS_CHANNEL,
    request.id,
    TASKS_DONE_CHANNEL,
    r.taskId,
  ]);
  return request;
}

/** A request with its task's state and whether the task's cancellation was requested. */
export interface RequestWithTask {
  request: PermissionRequest;
  taskState: string;
  cancelRequested: boolean;
}

/**
 * Reads a request and its task. With `lockTask` (inside a transaction) the task row is locked
 * first: an answer then waits for a concurrent answer of the same task to commit and sees it.
 */
export async function findRequestWithTask(
  db: Queryable,
  id: string,
  options: { lockTask?: boolean } = {},
): Promise<RequestWithTask | null> {
  if (options.lockTask) {
    await db.query(
      `SELECT t.id FROM tasks t JOIN permission_requests r ON r.task_id = t.id WHERE r.id = $1 FOR UPDATE OF t`,
      [id],
    );
  }
  const { rows } = await db.query(
    `SELECT r.*, t.state AS task_state, t.cancel_requested_at IS NOT NULL AS task_cancel_requested
       FROM permission_requests r JOIN tasks t ON t.id = r.task_id WHERE r.id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  const { task_state: taskState, task_cancel_requested: cancelRequested, ...request } = row;
  return {
    request: toRequest(request),
    taskState: String(taskState),
    cancelRequested: Boolean(cancelRequested),
  };
}

/**
 * Records the chosen option if the request is still pending (compare-and-set): null otherwise.
 * NOTIFYs permission_answers, which wakes the dispatcher that holds the agent's request open.
 */
export async function markRequestAnswered(
  tx: Queryable,
  id: string,
  optionId: string,
): Promise<PermissionRequest | null> {
  const { rows } = await tx.query(
    `UPDATE permission_requests SET state = 'answered', chosen_option_id = $2,
            answered_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE id = $1 AND state = 'pending'
      RETURNING *`,
    [id, optionId],
  );
  if (!rows[0]) return null;
  await tx.query('SELECT pg_notify($1, $2)', [PERMISSION_ANSWERS_CHANNEL, id]);
  return toRequest(rows[0]);
}

/** Ends a still-pending request without an answer; false when it had already left pending. */
export async function closeRequest(
  tx: Queryable,
  id: string,
  state: 'cancelled' | 'expired',
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE permission_requests SET state = $2, updated_at = clock_timestamp()
      WHERE id = $1 AND state = 'pending'`,
    [id, state],
  );
  return rowCount === 1;
}

/**
 * Puts a blocked task back to running once none of its requests is pending. `owner` narrows it to
 * the dispatcher holding the lease; without it any leased task qualifies (answer_permission, which
 * does not know the owner; a task without a lease may not be running).
 */
export async function resumeTaskIfUnblocked(tx: Queryable, taskId: string, owner?: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `UPDATE tasks SET state = 'running', updated_at = clock_timestamp()
      WHERE id = $1 AND state = 'blocked' AND lease_owner IS NOT NULL
        AND ($2::text IS NULL OR lease_owner = $2)
        AND NOT EXISTS (SELECT 1 FROM permission_requests r WHERE r.task_id = $1 AND r.state = 'pending')`,
    [taskId, owner ?? null],
  );
  return rowCount === 1;
}

/**
 * Expires the pending requests of tasks whose run ended without them (a dead dispatcher's tasks,
 * released by the lease sweep): nobody is waiting for their answers any more.
 */
export async function expirePendingRequests(tx: Queryable, taskIds: readonly string[]): Promise<number> {
  if (taskIds.length === 0) return 0;
  const { rowCount } = await tx.query(
    `UPDATE permission_requests SET state = 'expired', updated_at = clock_timestamp()
      WHERE task_id = ANY($1::uuid[]) AND state = 'pending'`,
    [taskIds],
  );
  return rowCount;
}

export interface PermissionRequestFilter {
  sessionId?: string;
  taskId?: string;
  state?: PermissionRequestState;
  afterSeq?: number;
  limit: number;
}

export async function listPermissionRequests(
  db: Queryable,
  f: PermissionRequestFilter,
): Promise<PermissionRequest[]> {
  const { rows } = await db.query(
    `SELECT * FROM permission_requests
      WHERE ($1::uuid IS NULL OR session_id = $1) AND ($2::uuid IS NULL OR task_id = $2)
        AND ($3::text IS NULL OR state = $3) AND seq > $4
      ORDER BY seq LIMIT $5`,
    [f.sessionId ?? null, f.taskId ?? null, f.state ?? null, f.afterSeq ?? 0, f.limit],
  );
  return rows.map(toRequest);
}
