/** SQL for pending_changes. Status moves only by compare-and-set, so two racing applies cannot both win. */
import type { Queryable } from './db.js';
import { type ChangeOperation, type ChangeStatus, type PendingChange, toCamel } from './rows.js';

export interface NewChangeRow {
  sessionId: string;
  taskId: string;
  worktreeId: string | null;
  agent: string | null;
  filePath: string;
  operation: ChangeOperation;
  diff: string;
  diffBytes: number;
  baseOid: string | null;
  resultOid: string | null;
  baseMode: string | null;
  resultMode: string | null;
  /** The rejected change this one replaces (a follow-up of request_changes). */
  supersedesId?: string | null;
}

/** Inserts all of a task's changes in one statement (one round trip however many files). */
export async function insertChanges(db: Queryable, changes: NewChangeRow[]): Promise<number> {
  if (changes.length === 0) return 0;
  const col = <K extends keyof NewChangeRow>(k: K) => changes.map((c) => c[k]);
  const { rowCount } = await db.query(
    `INSERT INTO pending_changes (session_id, task_id, worktree_id, agent, file_path, operation, diff, diff_bytes,
                                  base_oid, result_oid, base_mode, result_mode, supersedes_id)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                          $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[])`,
    [
      col('sessionId'),
      col('taskId'),
      col('worktreeId'),
      col('agent'),
      col('filePath'),
      col('operation'),
      col('diff'),
      col('diffBytes'),
      col('baseOid'),
      col('resultOid'),
      col('baseMode'),
      col('resultMode'),
      changes.map((c) => c.supersedesId ?? null),
    ],
  );
  return rowCount;
}

/** Removes what an earlier, abandoned attempt of a task recorded, so one attempt's changes remain. */
export async function deleteTaskChanges(db: Queryable, taskId: string): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM pending_changes WHERE task_id = $1 AND status = 'pending'`,
    [taskId],
  );
  return rowCount;
}

export interface ChangeFilter {
  sessionId?: string;
  taskId?: string;
  status?: ChangeStatus;
  agent?: string;
  afterSeq: number;
  limit: number;
}

export async function listChanges(db: Queryable, f: ChangeFilter): Promise<PendingChange[]> {
  const { rows } = await db.query(
    `SELECT * FROM pending_changes
      WHERE ($1::uuid IS NULL OR session_id = $1) AND ($2::uuid IS NULL OR task_id = $2)
        AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR agent = $4) AND seq > $5
      ORDER BY seq LIMIT $6`,
    [f.sessionId ?? null, f.taskId ?? null, f.status ?? null, f.agent ?? null, f.afterSeq, f.limit],
  );
  return rows.map((r) => toCamel<PendingChange>(r));
}

export async function findChange(db: Queryable, id: string): Promise<PendingChange | null> {
  const { rows } = await db.query('SELECT * FROM pending_changes WHERE id = $1', [id]);
  return rows[0] ? toCamel<PendingChange>(rows[0]) : null;
}

/**
 * Moves a change from one status to another only if it is still in `from`; returns the row, or
 * null when another caller moved it first.
 */
export async function transitionChange(
  db: Queryable,
  id: string,
  from: ChangeStatus,
  to: ChangeStatus,
): Promise<PendingChange | null> {
  const { rows } = await db.query(
    `UPDATE pending_changes SET status = $3, updated_at = clock_timestamp(),
            applied_at = CASE WHEN $3 = 'applied' THEN clock_timestamp() ELSE applied_at END,
            reverted_at = CASE WHEN $3 = 'reverted' THEN clock_timestamp() ELSE reverted_at END
      WHERE id = $1 AND status = $2 RETURNING *`,
    [id, from, to],
  );
  return rows[0] ? toCamel<PendingChange>(rows[0]) : null;
}

/** Locks one change row for the length of a transaction (apply holds it while it writes the file). */
export async function lockChange(db: Queryable, id: string): Promise<PendingChange | null> {
  const { rows } = await db.query('SELECT * FROM pending_changes WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ? toCamel<PendingChange>(rows[0]) : null;
}

/**
 * Locks many change rows for the length of a transaction, in id order: two batches that share
 * changes then take their locks in the same order and cannot deadlock (the sort runs below the
 * row locking in the plan). Rows come back in id order; ids with no row are absent.
 */
export async function lockChanges(db: Queryable, ids: readonly string[]): Promise<PendingChange[]> {
  const { rows } = await db.query(
    'SELECT * FROM pending_changes WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE',
    [ids],
  );
  return rows.map((r) => toCamel<PendingChange>(r));
}

/**
 * `transitionChange` for many rows in one statement: each moves to `to` only if it is still in its
 * own `from` status. Returns the rows that moved (fewer than asked when another caller moved one).
 */
export async function transitionChanges(
  db: Queryable,
  moves: ReadonlyArray<{ id: string; from: ChangeStatus }>,
  to: ChangeStatus,
): Promise<PendingChange[]> {
  const { rows } = await db.query(
    `UPDATE pending_changes p SET status = $3, updated_at = clock_timestamp(),
            applied_at = CASE WHEN $3 = 'applied' THEN clock_timestamp() ELSE p.applied_at END,
            reverted_at = CASE WHEN $3 = 'reverted' THEN clock_timestamp() ELSE p.reverted_at END
       FROM unnest($1::uuid[], $2::text[]) AS m(id, status)
      WHERE p.id = m.id AND p.status = m.status RETURNING p.*`,
    [moves.map((m) => m.id), moves.map((m) => m.from), to],
  );
  return rows.map((r) => toCamel<PendingChange>(r));
}

/**
 * Paths of the project's changes applied or reverted at or after `since`: apply_change writes the
 * user's checkout, and the check for agents writing outside their worktree must not blame those
 * writes on the agent of a task that ran meanwhile.
 */
export async function pathsAppliedSince(db: Queryable, projectId: string, since: Date): Promise<string[]> {
  const { rows } = await db.query<{ file_path: string }>(
    `SELECT DISTINCT c.file_path FROM pending_changes c JOIN sessions s ON s.id = c.session_id
      WHERE s.project_id = $1 AND (c.applied_at >= $2::timestamptz OR c.reverted_at >= $2::timestamptz)`,
    [projectId, since.toISOString()],
  );
  return rows.map((r) => r.file_path);
}

/** Records what each applied file held before, and the merge apply wrote (null: the result). */
export async function recordApplied(
  db: Queryable,
  rows: ReadonlyArray<{
    id: string;
    priorOid: string | null;
    priorMode: string | null;
    mergedOid: string | null;
  }>,
): Promise<void> {
  await db.query(
    `UPDATE pending_changes p SET prior_oid = m.prior_oid, prior_mode = m.prior_mode, merged_oid = m.merged_oid
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS m(id, prior_oid, prior_mode, merged_oid)
      WHERE p.id = m.id`,
    [
      rows.map((r) => r.id),
      rows.map((r) => r.priorOid),
      rows.map((r) => r.priorMode),
      rows.map((r) => r.mergedOid),
    ],
  );
}

/** request_changes: the reviewer's comment and the follow-up task, on the changes it rejected. */
export async function recordChangesRequested(
  db: Queryable,
  ids: readonly string[],
  comment: string,
  followUpTaskId: string,
): Promise<void> {
  await db.query(
    'UPDATE pending_changes SET review_comment = $2, follow_up_task_id = $3 WHERE id = ANY($1::uuid[])',
    [ids, comment, followUpTaskId],
  );
}

/** The rejected changes a follow-up task was queued to redo (their files' changes supersede them). */
export async function findChangesToRedo(db: Queryable, followUpTaskId: string): Promise<PendingChange[]> {
  const { rows } = await db.query(
    `SELECT * FROM pending_changes WHERE follow_up_task_id = $1 AND status = 'rejected' ORDER BY seq`,
    [followUpTaskId],
  );
  return rows.map((r) => toCamel<PendingChange>(r));
}
