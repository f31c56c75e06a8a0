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
}

/** Records a session's worktree; a concurrent second insert for the same session returns the first. */
export async function insertWorktree(db: Queryable, w: NewWorktreeRow): Promise<WorktreeRow> {
  await db.query(
    `INSERT INTO worktrees (session_id, project_id, path, branch, base_commit, head_commit, slug)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (session_id) WHERE status = 'active' DO NOTHING`,
    [w.sessionId, w.projectId, w.path, w.branch, w.baseCommit, w.headCommit, w.sessionId.slice(0, 8)],
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
