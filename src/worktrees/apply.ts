/**
 * Byte-exact apply and revert of captured file changes into the user's working tree. Not via
 * `git apply`: the exact before/after blobs are in the repository's object store (worktrees share
 * it), so a change is "the file must hash to X; make it hold Y". If the file on disk is not X,
 * nothing is written (E_BASE_MOVED): the user's own edits are never overwritten.
 *
 * One change is a batch of one: apply-batch.ts holds the checks and the writes, apply-guards.ts
 * the path and mode guards, blob-batch.ts the reading of blobs from the object store.
 */
import { applyFileChanges, revertFileChanges } from './apply-batch.js';
import type { FileChange } from './apply-guards.js';

export { type AppliedFile, applyFileChanges, revertFileChanges } from './apply-batch.js';
export type { FileChange } from './apply-guards.js';
export { blobOidOf, MAX_FILE_BYTES, readBlob, readBlobs } from './blob-batch.js';

/** Makes the user's file hold the change's result. Its current state must be the change's base. */
export async function applyFileChange(repoRoot: string, change: FileChange): Promise<void> {
  await applyFileChanges(repoRoot, [change]);
}

/** Undoes an applied change. The file must still hold the change's result (or be absent after a delete). */
export function revertFileChange(repoRoot: string, change: FileChange): Promise<void> {
  return revertFileChanges(repoRoot, [change]);
}
