/**
 * Turns what an agent did in a session worktree into per-file changes. Everything in the worktree
 * is staged and committed on the worktree's branch (plumbing: no commit hook can exist to run),
 * then `sinceCommit..newCommit` is diffed with `--no-renames`, so each path is one change and the
 * next capture sees only what came after. A fixed number of git calls, whatever the file count.
 */
import { BoocoderError } from '../errors.js';
import { assertOid, type RunGitOptions, runGit, runGitBuffer, streamGit } from './git.js';
import { oversizeDiffPlaceholder, PatchSplitter } from './patch-split.js';
import { checkRepoPath } from './path-policy.js';
import { worktreeGitOptions } from './repository.js';
import { type SkippedPath, splitNul, stageWorktree } from './stage-worktree.js';

export type ChangeOperation = 'create' | 'edit' | 'delete';

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
}

export interface CaptureResult {
  /** the commit the changes lead to; equals sinceCommit when nothing changed */
  commit: string;
  changes: CapturedChange[];
  /** paths seen but not captured (nested repositories, FIFOs, sockets) */
  skipped: SkippedPath[];
}

interface RawEntry {
  baseMode: string;
  resultMode: string;
  baseOid: string;
  resultOid: string;
  status: string;
  filePath: string;
}

/** Parses `diff-tree -r -z` raw output: `:mode mode oid oid STATUS\0path\0` per file. */
export function parseRawDiff(buf: Buffer): RawEntry[] {
  const fields = splitNul(buf);
  const out: RawEntry[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const meta = (fields[i] as Buffer).toString('latin1');
    const m = /^:(\d{6}) (\d{6}) ([0-9a-f]+) ([0-9a-f]+) ([A-Z])\d*$/.exec(meta);
    if (!m) throw new BoocoderError('E_GIT_FAILED', 'unexpected output from git diff-tree');
    out.push({
      baseMode: m[1] as string,
      resultMode: m[2] as string,
      baseOid: m[3] as string,
      resultOid: m[4] as string,
      status: m[5] as string,
      filePath: (fields[i + 1] as Buffer).toString('utf8'),
    });
  }
  return out;
}

const DIFF_FLAGS = [
  '-r',
  '--no-renames',
  '--no-ext-diff',
  '--no-textconv',
  '-O/dev/null',
  '--ignore-submodules=none',
];

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

async function rawDiff(opts: RunGitOptions, from: string, to: string): Promise<RawEntry[]> {
  const r = await runGitBuffer(['diff-tree', '-z', ...DIFF_FLAGS, from, to], opts);
  return parseRawDiff(r.stdout);
}

async function patches(opts: RunGitOptions, from: string, to: string, maxStored: number) {
  const splitter = new PatchSplitter(maxStored);
  await streamGit(
    ['diff-tree', '-p', '--no-color', '--src-prefix=a/', '--dst-prefix=b/', ...DIFF_FLAGS, from, to],
    opts,
    (chunk) => splitter.push(chunk),
  );
  return splitter.finish();
}

async function revParse(opts: RunGitOptions, rev: string): Promise<string> {
  return (await runGit(['rev-parse', '--verify', '--end-of-options', rev], opts)).stdout.trim();
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
}): Promise<CaptureResult> {
  const since = assertOid(input.sinceCommit, 'sinceCommit');
  const opts = await worktreeGitOptions(input.repoPath, input.worktreePath);
  const head = await revParse(opts, 'HEAD^{commit}');
  const zeroOid = '0'.repeat(head.length);
  const { skipped } = await stageWorktree(opts, opts.cwd, zeroOid, input.limits.maxFiles);
  const tree = (await runGit(['write-tree'], opts)).stdout.trim();

  // Count before committing: over the limit, the branch stays where it was.
  const entries = await rawDiff(opts, since, tree);
  if (entries.length > input.limits.maxFiles) {
    throw new BoocoderError(
      'E_TOO_MANY_FILES',
      `the agent changed ${entries.length} files, over the limit of ${input.limits.maxFiles}; ask for a smaller task or add build output to .gitignore`,
    );
  }
  if (entries.length === 0) return { commit: since, changes: [], skipped };
  let commit = head;
  if (tree !== (await revParse(opts, 'HEAD^{tree}'))) {
    commit = (
      await runGit(['commit-tree', tree, '-p', head, '-F', '-'], {
        ...opts,
        input: `${input.message || 'boocoder'}\n`,
      })
    ).stdout.trim();
    // Compare-and-swap on the old head: a concurrent writer makes this fail instead of losing work.
    await runGit(['update-ref', '-m', 'boocoder: capture', 'HEAD', commit, head], opts);
  }

  const segments = await patches(opts, since, tree, input.limits.maxDiffBytes);
  const changes: CapturedChange[] = [];
  let next = 0;
  for (const e of entries) {
    // A file <-> symlink type change is printed as a deletion plus a creation: two segments.
    const typeChanged = e.status === 'T' && e.baseMode.slice(0, 2) !== e.resultMode.slice(0, 2);
    const parts = segments.slice(next, next + (typeChanged ? 2 : 1));
    next += parts.length;
    if (parts.length === 0)
      throw new BoocoderError('E_GIT_FAILED', 'git diff-tree printed fewer patches than files');
    const diffBytes = parts.reduce((n, p) => n + p.totalBytes, 0);
    const diff =
      diffBytes > input.limits.maxDiffBytes
        ? oversizeDiffPlaceholder(e.filePath, diffBytes, input.limits.maxDiffBytes)
        : Buffer.concat(parts.map((p) => p.bytes)).toString('utf8');
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
    throw new BoocoderError('E_GIT_FAILED', 'git diff-tree printed more patches than files');
  return { commit, changes, skipped };
}
