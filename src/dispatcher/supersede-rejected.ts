/**
 * The capture side of request_changes (services/review.ts queues the follow-up): when a follow-up
 * task's capture holds a change to a file that was sent back to it, that change supersedes the
 * rejected one and is recorded against the rejected change's base (the user's file as the agent
 * first found it), not against the worktree's state after the rejected change: applying it then
 * needs no merge. Here, below the services, so the dispatcher imports nothing from the layer above.
 */
import type { Queryable } from '../db/db.js';
import { findChangesToRedo } from '../db/pending-changes.js';
import { diffBlobs } from '../worktrees/blob-diff.js';
import type { CapturedChange } from '../worktrees/capture.js';

/**
 * A follow-up task's captured changes, each one that touches a file sent back to it rebased onto
 * the rejected change's base (and its diff recomputed from there). A file the follow-up brought
 * back to that base leaves no change at all.
 */
export async function supersedeRejected(
  db: Queryable,
  repoPath: string,
  taskId: string,
  captured: readonly CapturedChange[],
  maxDiffBytes: number,
): Promise<Array<CapturedChange & { supersedesId?: string }>> {
  const redo = new Map((await findChangesToRedo(db, taskId)).map((c) => [c.filePath, c]));
  if (redo.size === 0) return [...captured];
  const out: Array<CapturedChange & { supersedesId?: string }> = [];
  for (const c of captured) {
    const rejected = redo.get(c.filePath);
    if (!rejected) {
      out.push(c);
      continue;
    }
    const { baseOid, baseMode } = rejected;
    if (baseOid === c.resultOid && (baseOid === null || baseMode === c.resultMode)) continue;
    const operation = baseOid === null ? 'create' : c.resultOid === null ? 'delete' : 'edit';
    const { diff, diffBytes } = await diffBlobs(repoPath, c.filePath, baseOid, c.resultOid, maxDiffBytes);
    out.push({ ...c, operation, baseOid, baseMode, diff, diffBytes, supersedesId: rejected.id });
  }
  return out;
}
