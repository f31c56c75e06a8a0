/** Gives a session its worktree (one per session, shared by all its agents) and a clean start for a run. */

import type { Db } from '../db/db.js';
import { lockProjectWorktrees, type Project } from '../db/projects.js';
import { findActiveWorktree, insertWorktree, type WorktreeRow } from '../db/worktrees.js';
import { requireProjectFolder } from '../worktrees/repository.js';
import { resetWorktree } from '../worktrees/reset.js';
import { ensureSessionWorktree } from '../worktrees/worktrees.js';

export interface PreparedWorktree {
  id: string;
  path: string;
  /** The commit this run's changes are measured from: the last recorded capture. */
  headCommit: string;
}

/**
 * Ensures the worktree exists and holds exactly the last recorded capture: anything an earlier,
 * abandoned attempt left behind (a dispatcher killed mid-run) is discarded, so exactly one
 * attempt's changes become pending changes.
 */
export async function prepareSessionWorktree(
  db: Db,
  project: Project,
  sessionId: string,
  worktreesRoot: string,
  /** The machine the worktree lives on (project-machine.ts). */
  machineId: string,
  /** Where a new worktree starts (an arena's pinned commit); default: the repository's HEAD. */
  startCommit?: string,
): Promise<PreparedWorktree> {
  // A task queued before the folder went (or by session id) fails with a code saying so, not E_INTERNAL.
  await requireProjectFolder(project.rootPath, 'the task could not start');
  const ensure = () =>
    ensureSessionWorktree({
      repoPath: project.rootPath,
      worktreesRoot,
      sessionId,
      ...(startCommit ? { startCommit } : {}),
    });
  // On PGlite one process owns the database, and ensureSessionWorktree already queues in-process;
  // a PGlite transaction would also hold up every other query while git runs.
  const git =
    db.kind === 'pg'
      ? await db.transaction(async (tx) => {
          await lockProjectWorktrees(tx, project.id);
          return ensure();
        })
      : await ensure();
  let row: WorktreeRow | null = await findActiveWorktree(db, sessionId);
  if (!row) {
    row = await insertWorktree(db, {
      sessionId,
      projectId: project.id,
      path: git.path,
      branch: git.branch,
      baseCommit: git.baseCommit,
      headCommit: git.headCommit,
      machineId,
    });
  }
  const headCommit = row.headCommit ?? git.headCommit;
  await resetWorktree({ repoPath: project.rootPath, worktreePath: git.path, commit: headCommit });
  return { id: row.id, path: git.path, headCommit };
}
