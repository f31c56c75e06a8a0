/**
 * Turns what an agent did in a session worktree into per-file changes. Everything in the worktree
 * is staged into its index (stage-worktree.ts) and written as a tree and a commit with plumbing (no
 * commit hook can exist to run): as loose objects for a small capture, as one pack written by
 * fast-import for a large one (capture-pack.ts). `sinceCommit` is diffed once against the new tree
 * with `--no-renames --raw -p` (capture-diff.ts), so each path is one change with its modes, object
 * ids and patch. Only when the diff is within limits does the worktree's branch move to that commit,
 * so the next capture sees only what came after. A fixed number of git calls, whatever the file
 * count: nine (loose) or seven (pack), two of them to find the worktree's git directory and filter
 * drivers (plus, when loose, one per symlink; and one or two when the agent made commits of its
 * own); a capture with nothing to record stops after three.
 */
import type { ChangeOperation } from '../db/rows.js';
import { BoocoderError } from '../errors.js';
import { MAX_FILE_BYTES } from './blob-batch.js';
import { diffStaged, type RawEntry, type StagedDiff } from './capture-diff.js';
import { PACK_THRESHOLD, shouldWritePack, writeCapturePack } from './capture-pack.js';
import { assertOid, type RunGitOptions, runGit } from './git.js';
import { overBudgetDiffPlaceholder, oversizeDiffPlaceholder, type PatchSegment } from './patch-split.js';
import { checkRepoPath } from './path-policy.js';
import { worktreeGitOptions } from './repository.js';
import { hashFiles, planStaging, type SkippedPath, type StagePlan, writeIndex } from './stage-worktree.js';

export interface CapturedChange {
  filePath: string;
  operation: ChangeOperation;
  /** unified git-style diff of this file (or a placeholder when over the size limit) */
  diff: string;
  /** the real size of the diff in bytes, even when a placeholder was stored */
  diffBytes: number;
  baseOid: string | null;
  resultOid: string | null;
  baseMode: string | null;
  resultMode: string | null;
  /** true when applying this change must be refused (path policy, symlink, submodule) */
  unsafe: boolean;
  unsafeReason: string | null;
}

export interface CaptureLimits {
  /** more changed files than this: E_TOO_MANY_FILES, and nothing is committed */
  maxFiles: number;
  /** per file: a larger diff is replaced by a placeholder (diffBytes keeps the real size) */
  maxDiffBytes: number;
  /** all files together: diffs past this total are replaced by placeholders too (default 32 MiB) */
  maxTotalDiffBytes?: number;
  /** a larger file: E_DIFF_TOO_LARGE, and nothing is committed (default: the largest apply writes) */
  maxFileBytes?: number;
}

/**
 * Bounds what one capture holds in memory and writes to the database: without it, 5,000 files of
 * just under the per-file limit would be gigabytes of diff text.
 */
export const DEFAULT_MAX_TOTAL_DIFF_BYTES = 32 * 1024 * 1024;

export interface CaptureResult {
  /** the commit the changes lead to; equals sinceCommit when nothing changed */
  commit: string;
  changes: CapturedChange[];
  /** paths seen but not captured (nested repositories, FIFOs, sockets) */
  skipped: SkippedPath[];
}

function operationOf(status: string): ChangeOperation {
  if (status === 'A') return 'create';
  if (status === 'D') return 'delete';
  return 'edit';
}

function unsafeReasonOf(e: RawEntry): string | null {
  const check = checkRepoPath(e.filePath);
  if (!check.ok) return check.reason;
  if (check.path !== e.filePath) return 'the path is not in normal form';
  for (const mode of [e.baseMode, e.resultMode]) {
    if (mode === '120000') return 'a symlink: applying it could point files outside the repository';
    if (mode === '160000') return 'a submodule (gitlink): boocoder applies only regular files';
  }
  return null;
}

/** Writes the index as a tree, and a commit of that tree on `parent` that no branch points at yet. */
async function commitIndex(
  opts: RunGitOptions,
  parent: string,
  message: string,
): Promise<{ tree: string; commit: string }> {
  const tree = (await runGit(['write-tree'], opts)).stdout.trim();
  const r = await runGit(['commit-tree', tree, '-p', parent, '-F', '-'], {
    ...opts,
    input: `${message || 'boocoder'}\n`,
  });
  return { tree, commit: r.stdout.trim() };
}

interface StagedCommit extends StagedDiff {
  commit: string;
  /** the commit's tree, when known without asking git */
  tree?: string;
  skipped: SkippedPath[];
}

/**
 * Loose objects: the blobs are hashed into the index, which the diff reads while write-tree and
 * commit-tree run beside it.
 */
async function commitLoose(
  opts: RunGitOptions,
  plan: StagePlan,
  since: string,
  message: string,
  limits: Required<CaptureLimits>,
): Promise<StagedCommit> {
  await hashFiles(opts, plan.staged);
  await writeIndex(opts, plan);
  const [written, diff] = await both(
    commitIndex(opts, plan.head, message),
    diffStaged(opts, ['diff-index', '--cached'], [since], limits),
  );
  return { ...written, ...diff, skipped: plan.skipped };
}

/**
 * One pack (capture-pack.ts): the diff reads the new commit while the index takes the same entries,
 * so that the next capture's `status` compares against what was captured.
 */
async function commitPacked(
  opts: RunGitOptions,
  plan: StagePlan,
  since: string,
  message: string,
  limits: Required<CaptureLimits>,
): Promise<StagedCommit> {
  const written = await writeCapturePack(opts, plan, message, limits.maxFileBytes);
  const [, diff] = await both(
    writeIndex(opts, written.plan),
    diffStaged(opts, ['diff-tree'], [since, written.commit], limits),
  );
  return { commit: written.commit, ...diff, skipped: written.plan.skipped };
}

/** The tree of a commit. */
async function treeOf(opts: RunGitOptions, commit: string): Promise<string> {
  const r = await runGit(['rev-parse', '--verify', '--end-of-options', `${commit}^{tree}`], opts);
  return r.stdout.trim();
}

/** Waits for both, so no git process outlives the capture, then throws the first failure. */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  return [ra.value, rb.value];
}

/** A file's patch text, or a placeholder saying which limit kept it out. */
function storedDiff(
  filePath: string,
  parts: PatchSegment[],
  diffBytes: number,
  limits: Required<CaptureLimits>,
): string {
  if (diffBytes > limits.maxDiffBytes)
    return oversizeDiffPlaceholder(filePath, diffBytes, limits.maxDiffBytes);
  if (parts.some((p) => !p.complete))
    return overBudgetDiffPlaceholder(filePath, diffBytes, limits.maxTotalDiffBytes);
  return Buffer.concat(parts.map((p) => p.bytes)).toString('utf8');
}

/**
 * Captures everything the agent changed in the worktree since `sinceCommit`. `repoPath` is the
 * user's repository: the worktree's git directory is looked up there, never trusted from the
 * worktree's own `.git` file.
 */
export async function captureChanges(input: {
  repoPath: string;
  worktreePath: string;
  sinceCommit: string;
  message: string;
  limits: CaptureLimits;
  /** regular files to write from which the objects go into one pack (tests lower it) */
  packThreshold?: number;
}): Promise<CaptureResult> {
  const since = assertOid(input.sinceCommit, 'sinceCommit');
  const limits: Required<CaptureLimits> = {
    maxTotalDiffBytes: DEFAULT_MAX_TOTAL_DIFF_BYTES,
    maxFileBytes: MAX_FILE_BYTES,
    ...input.limits,
  };
  const opts = await worktreeGitOptions(input.repoPath, input.worktreePath);
  const plan = await planStaging(opts, opts.cwd, {
    maxNewFiles: limits.maxFiles,
    maxFileBytes: limits.maxFileBytes,
  });
  const { head } = plan;
  if (plan.clean && head === since) return { commit: since, changes: [], skipped: plan.skipped };
  const staged = shouldWritePack(plan, input.packThreshold ?? PACK_THRESHOLD)
    ? await commitPacked(opts, plan, since, input.message, limits)
    : await commitLoose(opts, plan, since, input.message, limits);
  const { entries, segments, skipped } = staged;
  if (entries.length === 0) return { commit: since, changes: [], skipped };
  // From HEAD = since, some change means a new tree; an agent's own commits may already hold it.
  let commit = head;
  if (head === since || (staged.tree ?? (await treeOf(opts, staged.commit))) !== (await treeOf(opts, head))) {
    commit = staged.commit;
    // Compare-and-swap on the old head: a concurrent writer makes this fail instead of losing work.
    await runGit(['update-ref', '-m', 'boocoder: capture', 'HEAD', commit, head], opts);
  }

  const changes: CapturedChange[] = [];
  let next = 0;
  for (const e of entries) {
    // A file <-> symlink type change is printed as a deletion plus a creation: two segments.
    const typeChanged = e.status === 'T' && e.baseMode.slice(0, 2) !== e.resultMode.slice(0, 2);
    const parts = segments.slice(next, next + (typeChanged ? 2 : 1));
    next += parts.length;
    if (parts.length === 0)
      throw new BoocoderError('E_GIT_FAILED', 'git diff printed fewer patches than files');
    const diffBytes = parts.reduce((n, p) => n + p.totalBytes, 0);
    const diff = storedDiff(e.filePath, parts, diffBytes, limits);
    const operation = operationOf(e.status);
    const reason = unsafeReasonOf(e);
    changes.push({
      filePath: e.filePath,
      operation,
      diff,
      diffBytes,
      baseOid: operation === 'create' ? null : e.baseOid,
      resultOid: operation === 'delete' ? null : e.resultOid,
      baseMode: operation === 'create' ? null : e.baseMode,
      resultMode: operation === 'delete' ? null : e.resultMode,
      unsafe: reason !== null,
      unsafeReason: reason,
    });
  }
  if (next !== segments.length)
    throw new BoocoderError('E_GIT_FAILED', 'git diff printed more patches than files');
  return { commit, changes, skipped };
}
