/** SQL for worktrees: one active worktree per session. */
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export interface WorktreeRow {
  id: string;
  sessionId: string | null;
  projectId: string | null;
  path: string;
  branch: string | null;
  baseCommit: string | null;
  headCommit: string | null;
  status: 'active' | 'archived';
  createdAt: Date;
}

export async function findActiveWorktree(db: Queryable, sessionId: string): Promise<WorktreeRow | null> {
  const { rows } = await db.query(`SELECT * FROM worktrees WHERE session_id = $1 AND status = 'active'`, [
    sessionId,
  ]);
  return rows[0] ? toCamel<WorktreeRow>(rows[0]) : null;
}

export interface NewWorktreeRow {
  sessionId: string;
  projectId: string;
  path: string;
  branch: string;
  baseCommit: string;
  headCommit: string;
  /** The machine whose disk holds the worktree (machine-id.ts). */
  machineId?: string;
}

/** Records a session's worktree; a concurrent second insert for the same session returns the first. */
export async function insertWorktree(db: Queryable, w: NewWorktreeRow): Promise<WorktreeRow> {
  await db.query(
    `INSERT INTO worktrees (session_id, project_id, path, branch, base_commit, head_commit, slug, machine_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (session_id) WHERE status = 'active' DO NOTHING`,
    [
      w.sessionId,
      w.projectId,
      w.path,
      w.branch,
      w.baseCommit,
      w.headCommit,
      w.sessionId.slice(0, 8),
      w.machineId ?? null,
    ],
  );
  const row = await findActiveWorktree(db, w.sessionId);
  if (!row) throw new Error('worktree row vanished right after insert');
  return row;
}

export async function setWorktreeHead(db: Queryable, id: string, headCommit: string): Promise<void> {
  await db.query('UPDATE worktrees SET head_commit = $2, updated_at = clock_timestamp() WHERE id = $1', [
    id,
    headCommit,
  ]);
}

/** Tasks in these states mean a session is not finished: its worktree is (or will be) in use. */
const OPEN_TASK_STATES = `('pending', 'running', 'blocked')`;

export interface ExpiredWorktree extends WorktreeRow {
  /** the project's repository */
  rootPath: string;
  /** changes from this session still waiting for review: their blobs live on its branch */
  pendingChanges: number;
  /** applied changes: revert needs their base blobs, which may live only on the branch */
  appliedChanges: number;
}

/**
 * Active worktrees under `pathPrefix` whose session is finished: no pending, running or blocked
 * task, and its last task ended more than `ttlMs` ago (by the database's clock, so hosts with a
 * skewed clock agree). Only rows under this host's worktrees folder and, given `machineId`, of
 * this machine (a worktree row without one: of its project's machine): with a shared PostgreSQL,
 * other machines' worktrees are theirs to clean, even where their paths look like ours.
 */
export async function listExpiredWorktrees(
  db: Queryable,
  pathPrefix: string,
  ttlMs: number,
  limit: number,
  machineId?: string,
): Promise<ExpiredWorktree[]> {
  const { rows } = await db.query(
    `SELECT w.*, p.root_path,
            (SELECT count(*)::int FROM pending_changes c
              WHERE c.status = 'pending' AND (c.session_id = w.session_id OR c.worktree_id = w.id)) AS pending_changes,
            (SELECT count(*)::int FROM pending_changes c
              WHERE c.status = 'applied' AND (c.session_id = w.session_id OR c.worktree_id = w.id)) AS applied_changes
       FROM worktrees w JOIN projects p ON p.id = w.project_id
      WHERE w.status = 'active' AND w.session_id IS NOT NULL AND left(w.path, length($1)) = $1
        AND ($4::text IS NULL OR COALESCE(w.machine_id, p.machine_id) = $4)
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = w.session_id AND t.state IN ${OPEN_TASK_STATES})
        AND (SELECT max(coalesce(t.ended_at, t.updated_at)) FROM tasks t WHERE t.session_id = w.session_id)
            < clock_timestamp() - $2::double precision * interval '1 millisecond'
      ORDER BY w.created_at LIMIT $3`,
    [pathPrefix, ttlMs, limit, machineId ?? null],
  );
  return rows.map((r) => toCamel<ExpiredWorktree>(r));
}

/**
 * Archives a finished session's worktree row, re-checking in the same statement that no task was
 * queued and no change captured since it was listed. False when the row must stay.
 */
export async function archiveFinishedWorktree(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE worktrees w SET status = 'archived', updated_at = clock_timestamp()
      WHERE w.id = $1 AND w.status = 'active'
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = w.session_id AND t.state IN ${OPEN_TASK_STATES})
        AND NOT EXISTS (SELECT 1 FROM pending_changes c
                         WHERE c.status = 'pending' AND (c.session_id = w.session_id OR c.worktree_id = w.id))`,
    [id],
  );
  return rowCount > 0;
}

export interface LocalWorktree extends WorktreeRow {
  /** null when the project row is gone */
  rootPath: string | null;
}

/** Active worktree rows under `pathPrefix` (this host's worktrees folder), of `machineId` when given. */
export async function listActiveWorktreesUnder(
  db: Queryable,
  pathPrefix: string,
  machineId?: string,
): Promise<LocalWorktree[]> {
  const { rows } = await db.query(
    `SELECT w.*, p.root_path FROM worktrees w LEFT JOIN projects p ON p.id = w.project_id
      WHERE w.status = 'active' AND left(w.path, length($1)) = $1
        AND ($2::text IS NULL OR COALESCE(w.machine_id, p.machine_id) = $2)
      ORDER BY w.created_at`,
    [pathPrefix, machineId ?? null],
  );
  return rows.map((r) => toCamel<LocalWorktree>(r));
}

/**
 * Archives the row of a worktree whose folder is gone, unless a task of the session is running:
 * that task may be re-creating the folder right now.
 */
export async function archiveMissingWorktree(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE worktrees w SET status = 'archived', updated_at = clock_timestamp()
      WHERE w.id = $1 AND w.status = 'active'
        AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = w.session_id AND t.state = 'running')`,
    [id],
  );
  return rowCount > 0;
}

export interface FolderOwner {
  /** the repository the folder's session (or its last worktree row) belongs to; null when unknown */
  rootPath: string | null;
  hasActiveRow: boolean;
  hasOpenTasks: boolean;
  hasPendingChanges: boolean;
}

/** What the database knows about a folder `${worktreesRoot}/${sessionId}` (sessionId: a UUID). */
export async function describeWorktreeFolder(
  db: Queryable,
  sessionId: string,
  path: string,
): Promise<FolderOwner> {
  const { rows } = await db.query(
    `SELECT coalesce(
              (SELECT p.root_path FROM sessions s JOIN projects p ON p.id = s.project_id WHERE s.id = $1),
              (SELECT p.root_path FROM worktrees w JOIN projects p ON p.id = w.project_id
                WHERE w.path = $2 ORDER BY w.created_at DESC LIMIT 1)) AS root_path,
            EXISTS (SELECT 1 FROM worktrees w WHERE w.status = 'active' AND (w.session_id = $1 OR w.path = $2))
              AS has_active_row,
            EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = $1 AND t.state IN ${OPEN_TASK_STATES}) AS has_open_tasks,
            EXISTS (SELECT 1 FROM pending_changes c WHERE c.session_id = $1 AND c.status = 'pending')
              AS has_pending_changes`,
    [sessionId, path],
  );
  return toCamel<FolderOwner>(rows[0] as Record<string, unknown>);
}
