/**
 * Inserting a task: pending, or already claimed by the dispatcher of the process that queues it
 * (claim at insert, see src/dispatcher/slot-reservation.ts). Every value is a $n parameter.
 */
import type { Queryable } from './db.js';
import { type Task, toCamel } from './rows.js';

/**
 * tasks.execution_path, as its CHECK allows (sql/0007_execution_paths.sql): `acp` an ACP agent over
 * stdio, `pty` a headless CLI run, `qwen` Qwen Code's headless run, `opencode_server` opencode's
 * shared server, `native` boocoder's own agent.
 */
export const EXECUTION_PATHS = ['acp', 'pty', 'qwen', 'opencode_server', 'native'] as const;
export type ExecutionPath = (typeof EXECUTION_PATHS)[number];

export interface NewTaskRow {
  projectId: string;
  sessionId: string;
  chatId: string;
  input: string;
  agent: string;
  model: string | null;
  /** The agent's mode, thought level and other config options (see applySessionConfig). */
  modeId?: string | null;
  thinkingOptionId?: string | null;
  featureValues?: Readonly<Record<string, string | boolean>> | null;
  parentTaskId: string | null;
  /** The arena the task is a contender of (new_arena). */
  arenaId?: string | null;
  maxAttempts: number;
  /** How the agent is driven; `acp` when omitted. */
  executionPath?: ExecutionPath;
  /** new_task's request_id (see findReplayableTask); absent: no replay. */
  requestId?: string | null;
  /** The task's budget: stopped with E_BUDGET_EXCEEDED once its agent reports usage past either. */
  maxCost?: number | null;
  maxTokens?: number | null;
  /**
   * Insert the task already claimed by this dispatcher when a claim would give it to it now (see
   * INSERT_CLAIMED); otherwise, or when omitted, it is inserted pending.
   */
  claimedBy?: TaskClaim;
}

/** The lease a claim writes: the dispatcher that holds the task, and for how long. */
export interface TaskClaim {
  owner: string;
  leaseMs: number;
}

const INSERT_COLUMNS = `project_id, session_id, chat_id, input, agent, model, mode_id, thinking_option_id,
                        feature_values, parent_task_id, max_attempts, execution_path, arena_id, request_id,
                        max_cost, max_tokens`;

const INSERT_PENDING = `INSERT INTO tasks (${INSERT_COLUMNS})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16) RETURNING *`;

/**
 * Claim at insert: the row is written as a claim would leave it (running, attempt 1, the owner's
 * lease) when a claim statement sent now would take it: its session has no active task, and none
 * of the 16 oldest pending tasks is claimable (it would be overtaken). Only 16: with thousands
 * queued behind busy sessions, checking every pending task would scan the queue on each insert; a
 * claimable task further back is a passing state (a free slot claims it at once) that the
 * dispatchers' claims resolve. Otherwise the task is inserted pending, as INSERT_PENDING does. Two
 * inserts racing into one idle session meet at the unique index on a session's active task; the
 * loser inserts nothing (DO NOTHING keeps the caller's transaction alive) and is inserted pending
 * by a second statement.
 */
const INSERT_CLAIMED = `
  WITH free AS (
    SELECT NOT EXISTS (SELECT 1 FROM tasks a WHERE a.session_id = $2::uuid AND a.state IN ('running', 'blocked'))
       AND NOT EXISTS (SELECT 1 FROM (SELECT o.session_id FROM tasks o WHERE o.state = 'pending'
                                       ORDER BY o.seq LIMIT 16) p
                        WHERE NOT EXISTS (SELECT 1 FROM tasks b WHERE b.session_id = p.session_id
                                             AND b.state IN ('running', 'blocked'))) AS claim_now)
  INSERT INTO tasks (${INSERT_COLUMNS}, state, attempts, lease_owner, lease_expires_at, started_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16,
          CASE WHEN (SELECT claim_now FROM free) THEN 'running' ELSE 'pending' END,
          CASE WHEN (SELECT claim_now FROM free) THEN 1 ELSE 0 END,
          CASE WHEN (SELECT claim_now FROM free) THEN $17::text END,
          CASE WHEN (SELECT claim_now FROM free)
               THEN clock_timestamp() + make_interval(secs => $18::double precision / 1000) END,
          CASE WHEN (SELECT claim_now FROM free) THEN clock_timestamp() END)
  ON CONFLICT (session_id) WHERE state IN ('running', 'blocked') DO NOTHING
  RETURNING *`;

function insertParams(t: NewTaskRow): unknown[] {
  return [
    t.projectId,
    t.sessionId,
    t.chatId,
    t.input,
    t.agent,
    t.model,
    t.modeId ?? null,
    t.thinkingOptionId ?? null,
    t.featureValues ? JSON.stringify(t.featureValues) : null,
    t.parentTaskId,
    t.maxAttempts,
    t.executionPath ?? 'acp',
    t.arenaId ?? null,
    t.requestId ?? null,
    t.maxCost ?? null,
    t.maxTokens ?? null,
  ];
}

/**
 * Inserts a task: pending (the insert trigger wakes the dispatchers), or with `claimedBy` already
 * claimed by that dispatcher when it may have it at once (check `state` and `leaseOwner`).
 */
export async function insertTask(db: Queryable, t: NewTaskRow): Promise<Task> {
  const params = insertParams(t);
  if (t.claimedBy) {
    const { rows } = await db.query(INSERT_CLAIMED, [...params, t.claimedBy.owner, t.claimedBy.leaseMs], {
      name: 'boocoder_insert_claimed_task',
    });
    if (rows[0]) return toCamel<Task>(rows[0]);
  }
  const { rows } = await db.query(INSERT_PENDING, params, { name: 'boocoder_insert_task' });
  return toCamel<Task>(rows[0] as Record<string, unknown>);
}

/**
 * The task a new_task with this request_id created in the project within the last `windowS`
 * seconds: a client that timed out and sent the call again gets it instead of a second agent run.
 */
export async function findReplayableTask(
  db: Queryable,
  projectId: string,
  requestId: string,
  windowS: number,
): Promise<Task | null> {
  const { rows } = await db.query(
    `SELECT * FROM tasks WHERE project_id = $1 AND request_id = $2
        AND created_at > clock_timestamp() - make_interval(secs => $3::double precision)`,
    [projectId, requestId, windowS],
  );
  return rows[0] ? toCamel<Task>(rows[0]) : null;
}

/**
 * Frees a request_id whose replay window has passed, so a new task can take it (the unique index
 * on (project_id, request_id) knows nothing of time).
 */
export async function releaseStaleRequestId(
  db: Queryable,
  projectId: string,
  requestId: string,
  windowS: number,
): Promise<void> {
  await db.query(
    `UPDATE tasks SET request_id = NULL WHERE project_id = $1 AND request_id = $2
        AND created_at <= clock_timestamp() - make_interval(secs => $3::double precision)`,
    [projectId, requestId, windowS],
  );
}

/** Whether `err` is the unique index on (project_id, request_id): a racing retry inserted first. */
export function isRequestIdTaken(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string; message?: string };
  return (
    e?.code === '23505' &&
    (e.constraint === 'tasks_project_request_uidx' ||
      String(e.message).includes('tasks_project_request_uidx'))
  );
}
