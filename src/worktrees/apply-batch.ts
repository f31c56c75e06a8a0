/**
 * Byte-exact apply and revert of a batch of captured file changes into the user's working tree,
 * all or nothing. Everything is checked before anything is written: every path, every mode, and
 * that every file still holds the bytes its change starts from (E_BASE_MOVED naming the file if
 * one does not: the user's own edits are never overwritten). Meanwhile the blobs are read (one git
 * process for the whole batch, if any is packed); then the files are written; if one write fails,
 * the files already written are put back from the bytes read during the check.
 *
 * Not via `git apply`: the exact before/after blobs are in the repository's object store (worktrees
 * share it), so a change is "the file must hash to X; make it hold Y". One change is a batch of
 * one; apply-guards.ts holds the path and mode guards, blob-batch.ts the reading of blobs.
 */
import { chmod, mkdir, open, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BoocoderError } from '../errors.js';
import { BatchPathGuard, type FileChange, type FileState, matches, statesOf } from './apply-guards.js';
import { openApplyJournal, tempPathOf } from './apply-journal.js';
import { blobOidOf, forEachLimited, formatOf, readBlobs } from './blob-batch.js';
import { assertNoSymlinkInPath, assertSafeRepoPath, describePath } from './path-policy.js';
import { projectMissingError } from './repository.js';
import { mergeOrRefuse, storeBlob } from './three-way-merge.js';

/** Files checked or written at once: enough to overlap fsyncs, few enough to bound open files. */
const CONCURRENCY = 16;

/** One file's move from `from` to `to`, with what the check found on disk. */
interface Step {
  rel: string;
  abs: string;
  from: FileState | null;
  to: FileState | null;
  /** The bytes on disk at check time (they hash to `from`): what a failed batch puts back. */
  current: Buffer | null;
  needsFolders: boolean;
  replacesFolder: boolean;
  kind: 'write' | 'delete' | 'chmod' | 'none';
  /** What a three-way merge produced, written instead of the `to` blob (apply only). */
  merged?: Buffer;
}

type Direction = 'apply' | 'revert';

/** Paths through policy, one step per change; two changes of one path are refused (order would decide). */
function planSteps(changes: readonly FileChange[], direction: Direction) {
  const seen = new Set<string>();
  return changes.map((change) => {
    const { base, result } = statesOf(change);
    const rel = assertSafeRepoPath(change.filePath);
    if (seen.has(rel)) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `two changes of this batch touch ${describePath(rel)}; apply them in separate calls, in the order you want`,
      );
    }
    seen.add(rel);
    const [from, to] = direction === 'apply' ? [base, result] : [result, base];
    return { rel, from, to };
  });
}

type Planned = ReturnType<typeof planSteps>;

async function checkAll(root: string, planned: Planned, direction: Direction): Promise<Step[]> {
  const deleted = new Set(planned.filter((p) => p.to === null).map((p) => p.rel));
  const guard = new BatchPathGuard(root, deleted);
  const steps: Step[] = new Array(planned.length);
  await forEachLimited([...planned.keys()], CONCURRENCY, async (i) => {
    const { rel, from, to } = planned[i] as (typeof planned)[number];
    const checked = await guard.check(rel);
    const step: Step = { rel, abs: join(root, rel), from, to, ...checked, kind: 'write' };
    const { current } = checked;
    if (!matches(current, from)) {
      // Already in the target state: a retried call (the first one wrote, then its caller failed).
      if (matches(current, to)) step.kind = 'none';
      else step.merged = await mergeOrRefuse(root, step, direction);
    } else if (to === null) step.kind = 'delete';
    else if (current !== null && from !== null && from.oid === to.oid) step.kind = 'chmod'; // a mode-only change
    steps[i] = step;
  });
  return steps;
}

const permissions = (mode: string) => (mode === '100755' ? 0o755 : 0o644);

/**
 * Writes through a temporary file in the same folder and a rename: no reader sees half a file. The
 * temp file's name follows from the path (apply-journal.ts), so one a crash left is found again.
 */
async function writeAtomically(root: string, rel: string, bytes: Buffer, mode: string): Promise<void> {
  const tmp = join(root, tempPathOf(rel));
  // A leftover of a crashed batch the sweep could not reach; 'wx' still refuses anything planted here.
  await unlink(tmp).catch(() => {});
  const handle = await open(tmp, 'wx', mode === '100755' ? 0o777 : 0o666);
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(root, rel));
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Removes folders a deletion left empty, as git does, up to `top` (default: all but the root). */
async function removeEmptyParents(root: string, abs: string, top?: string): Promise<void> {
  for (let dir = dirname(abs); dir !== root && dir.startsWith(`${root}/`); dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    if (dir === top) return;
  }
}

async function writeStep(root: string, step: Step, bytes: Buffer, mode: string): Promise<void> {
  if (step.needsFolders) {
    await mkdir(dirname(step.abs), { recursive: true });
    // The folders just created could have been swapped for symlinks in between: check again.
    await assertNoSymlinkInPath(root, step.rel);
  }
  await writeAtomically(root, step.rel, bytes, mode);
}

/** Puts one done step back to its `from` state. */
async function putBack(root: string, step: Step): Promise<void> {
  if (step.from === null) {
    await unlink(step.abs);
    await removeEmptyParents(root, step.abs);
  } else if (step.kind === 'chmod') {
    await chmod(step.abs, permissions(step.from.mode));
  } else {
    await writeStep(root, { ...step, needsFolders: true }, step.current as Buffer, step.from.mode);
  }
}

/** After a failed write: every done step put back, latest first (a file that replaced a folder...). */
async function rollBack(root: string, done: Step[], failed: readonly Step[], err: unknown): Promise<never> {
  const notRestored: string[] = [];
  for (const step of done.reverse()) {
    await putBack(root, step).catch(() => notRestored.push(step.rel));
  }
  // Folders made for files that were never written.
  for (const step of failed) if (step.needsFolders) await removeEmptyParents(root, step.abs);
  const why = (err as NodeJS.ErrnoException).code ?? 'an error';
  if (notRestored.length > 0) {
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      `writing the batch failed (${why}) and ${notRestored.length} file(s) could not be put back: ${notRestored.slice(0, 10).map(describePath).join(', ')}; check them by hand`,
      {},
      { cause: err },
    );
  }
  if (err instanceof BoocoderError) throw err;
  throw new BoocoderError(
    'E_WORKTREE_FAILED',
    `writing the batch failed (${why}); nothing was changed: the ${done.length} file(s) already written were put back`,
    {},
    { cause: err },
  );
}

/** Deletes, then mode changes, then writes (so a file can replace a folder the batch empties). */
async function execute(root: string, steps: Step[], blobs: Map<string, Buffer>): Promise<void> {
  const done: Step[] = [];
  const of = (kind: Step['kind']) => steps.filter((s) => s.kind === kind);
  const writes = of('write');
  try {
    await forEachLimited(of('delete'), CONCURRENCY, async (s) => {
      await unlink(s.abs);
      done.push(s);
    });
    // A file that replaces a folder: the deletions above emptied it (if they did not, the user's own
    // files are in it, and the rename below fails and everything is put back).
    for (const s of writes.filter((w) => w.replacesFolder)) {
      for (const d of of('delete'))
        if (d.rel.startsWith(`${s.rel}/`)) await removeEmptyParents(root, d.abs, s.abs);
    }
    await forEachLimited(of('chmod'), CONCURRENCY, async (s) => {
      await chmod(s.abs, permissions((s.to as FileState).mode));
      done.push(s);
    });
    await forEachLimited(writes, CONCURRENCY, async (s) => {
      const to = s.to as FileState;
      await writeStep(root, s, s.merged ?? (blobs.get(to.oid) as Buffer), to.mode);
      done.push(s);
    });
  } catch (err) {
    await rollBack(
      root,
      done,
      writes.filter((s) => !done.includes(s)),
      err,
    );
  }
  for (const s of of('delete')) await removeEmptyParents(root, s.abs);
}

export interface BatchOptions {
  /**
   * Where the batch's journal goes (boocoder's home): with it, temp files a crash leaves are swept
   * by the next batch on the repository and at start-up (apply-journal.ts).
   */
  journalDir?: string;
}

/** What an apply did to one file: what it held before (oid null: absent), and the merge it wrote. */
export interface AppliedFile {
  priorOid: string | null;
  priorMode: string | null;
  /** The blob id of what a merging apply wrote; null when it wrote the change's result. */
  mergedOid: string | null;
}

async function outcomesOf(root: string, steps: readonly Step[]): Promise<AppliedFile[]> {
  return Promise.all(
    steps.map(async (s) => {
      if (!s.merged)
        return { priorOid: s.from?.oid ?? null, priorMode: s.from?.mode ?? null, mergedOid: null };
      // The file held neither base nor result: its bytes go to the object store so revert can restore them.
      const to = s.to as FileState;
      return {
        priorOid: await storeBlob(root, s.current as Buffer),
        priorMode: to.mode,
        mergedOid: blobOidOf(s.merged, formatOf(to.oid)),
      };
    }),
  );
}

async function transitionAll(
  repoRoot: string,
  changes: readonly FileChange[],
  direction: Direction,
  options: BatchOptions,
): Promise<AppliedFile[]> {
  if (changes.length === 0) return [];
  const root = await realpath(repoRoot).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR')
      throw projectMissingError(`nothing was ${direction === 'apply' ? 'applied' : 'reverted'}`, err);
    throw err;
  });
  const planned = planSteps(changes, direction);
  // The blobs are read while the files are checked: a large capture's blobs are packed, and the
  // git process that reads them takes as long to start as the whole check. A batch the check
  // refuses has read some blobs for nothing; nothing was written.
  const reading = readBlobs(
    root,
    planned.flatMap((p) => (p.to ? [p.to.oid] : [])),
  );
  let steps: Step[];
  try {
    steps = await checkAll(root, planned, direction);
  } catch (err) {
    await reading.catch(() => {});
    throw err;
  }
  const blobs = await reading;
  const outcomes = await outcomesOf(root, steps);
  // Every path a write or a roll-back (a deleted file put back) may write through a temp file.
  const writes = steps.filter((s) => s.kind !== 'none').map((s) => s.rel);
  const closeJournal =
    options.journalDir && writes.length > 0
      ? await openApplyJournal(options.journalDir, root, writes)
      : undefined;
  try {
    await execute(root, steps, blobs);
  } finally {
    await closeJournal?.();
  }
  return outcomes;
}

/**
 * Makes every file hold its change's result, or writes nothing. Each file's current state must be
 * its change's base (or already the result: a retried call), or an edit that merges cleanly into
 * it; no two changes may touch one path. Returns, per change, what its file held before.
 */
export function applyFileChanges(
  repoRoot: string,
  changes: readonly FileChange[],
  options: BatchOptions = {},
): Promise<AppliedFile[]> {
  return transitionAll(repoRoot, changes, 'apply', options);
}

/** Undoes applied changes, all or nothing. Each file must still hold its change's result. */
export async function revertFileChanges(
  repoRoot: string,
  changes: readonly FileChange[],
  options: BatchOptions = {},
): Promise<void> {
  await transitionAll(repoRoot, changes, 'revert', options);
}

/** Makes the user's file hold the change's result. Its current state must be the change's base. */
export async function applyFileChange(repoRoot: string, change: FileChange): Promise<void> {
  await applyFileChanges(repoRoot, [change]);
}

/** Undoes an applied change. The file must still hold the change's result (or be absent after a delete). */
export function revertFileChange(repoRoot: string, change: FileChange): Promise<void> {
  return revertFileChanges(repoRoot, [change]);
}
