/**
 * One git worktree per session, at `${worktreesRoot}/${sessionId}` on the branch
 * `boocoder/session-<sessionId>`. Creation is idempotent and heals what a crash leaves behind.
 * No hook runs (post-checkout would otherwise fire on `worktree add`) and no filter driver runs
 * during checkout: see git.ts.
 */
import { lstat, mkdir, readFile, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BoocoderError } from '../errors.js';
import { assertOid, hardenedOptions, type RunGitOptions, runGit } from './git.js';
import { findWorktreeAdminDir, resolveRepository, worktreeGitOptions } from './repository.js';

export const SESSION_BRANCH_PREFIX = 'boocoder/session-';
/** Session ids become a folder name and a branch name: only this shape can do neither harm. */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface SessionWorktree {
  path: string;
  branch: string;
  /** The commit the branch started from (for a reused branch: its merge-base with the repo's HEAD). */
  baseCommit: string;
  /** The commit the worktree's HEAD is at now. */
  headCommit: string;
}

export function sessionBranchName(sessionId: string): string {
  if (!SESSION_ID.test(sessionId)) {
    throw new BoocoderError('E_INVALID_INPUT', 'a session id may hold only letters, digits, `-` and `_`');
  }
  return `${SESSION_BRANCH_PREFIX}${sessionId}`;
}

/** True when something (file, folder or link) is at path; links are not followed. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Per-repository queue for everything that adds, removes or prunes worktrees: `worktree prune` run
 * while another session's `worktree add` is half done deletes or misreads its admin folder
 * ("failed to read .git/worktrees/<x>/commondir"), failing that session's task.
 */
const inFlight = new Map<string, Promise<unknown>>();
function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = inFlight.get(key) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const settled = next.then(
    () => {},
    () => {},
  );
  inFlight.set(key, settled);
  void settled.then(() => {
    if (inFlight.get(key) === settled) inFlight.delete(key);
  });
  return next;
}

async function headOf(opts: RunGitOptions): Promise<string | undefined> {
  const r = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
    ...opts,
    okExitCodes: [1, 128],
  });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/**
 * A worktree is reusable when the repository has it registered at this path, its `.git` file
 * points back to that registration, and its HEAD resolves.
 */
async function reusableHead(repoRoot: string, commonDir: string, path: string): Promise<string | undefined> {
  const admin = await findWorktreeAdminDir(commonDir, path);
  if (!admin) return undefined;
  try {
    const dotGit = await lstat(join(path, '.git'));
    if (!dotGit.isFile()) return undefined;
    const pointer = (await readFile(join(path, '.git'), 'utf8')).trim();
    if (pointer !== `gitdir: ${admin}`) return undefined;
  } catch {
    return undefined;
  }
  return headOf(await worktreeGitOptions(repoRoot, path));
}

async function baseOf(repoOpts: RunGitOptions, branchTip: string, repoHead: string): Promise<string> {
  const r = await runGit(['merge-base', branchTip, repoHead], { ...repoOpts, okExitCodes: [1] });
  return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : branchTip;
}

/**
 * Creates, or finds again, the worktree of a session. Heals: a registration whose folder was
 * deleted (pruned), a folder left by a failed `worktree add` (removed and re-created), and a
 * branch that outlived its worktree (checked out again, keeping its commits).
 */
export async function ensureSessionWorktree(input: {
  repoPath: string;
  worktreesRoot: string;
  sessionId: string;
  /** Where a new branch starts (an arena's pinned commit); default: the repository's HEAD. */
  startCommit?: string;
}): Promise<SessionWorktree> {
  const branch = sessionBranchName(input.sessionId);
  if (input.startCommit !== undefined) assertOid(input.startCommit, 'the start commit');
  await mkdir(input.worktreesRoot, { recursive: true });
  const path = join(await realpath(input.worktreesRoot), input.sessionId);
  const repo = await resolveRepository(input.repoPath);
  return serialised(repo.commonDir, async () => {
    const repoOpts = await hardenedOptions({ cwd: repo.rootPath });
    await runGit(['worktree', 'prune'], repoOpts);

    const reusedHead = await reusableHead(repo.rootPath, repo.commonDir, path);
    if (reusedHead) {
      return {
        path,
        branch,
        baseCommit: await baseOf(repoOpts, reusedHead, repo.headCommit),
        headCommit: reusedHead,
      };
    }
    if (await exists(path)) await clearDebris(repo.rootPath, repo.commonDir, path, repoOpts);

    const ref = `refs/heads/${branch}`;
    const branchTip = await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], {
      ...repoOpts,
      okExitCodes: [1, 128],
    });
    try {
      if (branchTip.exitCode === 0) {
        await runGit(['worktree', 'add', path, branch], repoOpts);
      } else {
        await runGit(['worktree', 'add', '-b', branch, path, input.startCommit ?? repo.headCommit], repoOpts);
      }
    } catch (err) {
      // Leave nothing half-made behind: the next call would find debris.
      await rm(path, { recursive: true, force: true });
      await runGit(['worktree', 'prune'], repoOpts).catch(() => {});
      throw new BoocoderError(
        'E_WORKTREE_FAILED',
        `cannot create the session worktree: ${(err as Error).message}`,
        {},
        {
          cause: err,
        },
      );
    }
    const headCommit = await headOf(await worktreeGitOptions(repo.rootPath, path));
    if (!headCommit)
      throw new BoocoderError('E_WORKTREE_FAILED', 'the new session worktree has no HEAD commit');
    const baseCommit =
      branchTip.exitCode === 0
        ? await baseOf(repoOpts, headCommit, repo.headCommit)
        : (input.startCommit ?? repo.headCommit);
    return { path, branch, baseCommit, headCommit };
  });
}

/**
 * A folder at the session path that is not a usable worktree of this repository. If it is a
 * worktree of another repository it is left alone (refused): deleting it could lose someone's work.
 */
async function clearDebris(
  repoRoot: string,
  commonDir: string,
  path: string,
  repoOpts: RunGitOptions,
): Promise<void> {
  const dotGit = join(path, '.git');
  if (await exists(dotGit)) {
    let pointer = '';
    try {
      pointer = (await readFile(dotGit, 'utf8')).trim();
    } catch {
      // a `.git` folder: a repository of its own, not ours
    }
    const ours = pointer.startsWith(`gitdir: ${join(commonDir, 'worktrees')}/`);
    if (!ours) {
      throw new BoocoderError(
        'E_WORKTREE_FAILED',
        'the session worktree folder holds another git checkout; remove it or use another worktrees folder',
      );
    }
  }
  if (await findWorktreeAdminDir(commonDir, path)) {
    await runGit(['worktree', 'remove', '--force', '--force', path], repoOpts).catch(() => {});
  }
  await rm(path, { recursive: true, force: true });
  await runGit(['worktree', 'prune'], { ...repoOpts, cwd: repoRoot });
}

/** True when the worktree has changes not yet captured: edits, deletions or untracked files. */
export async function isWorktreeDirty(repoPath: string, worktreePath: string): Promise<boolean> {
  const opts = await worktreeGitOptions(repoPath, worktreePath);
  const r = await runGit(
    ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--ignore-submodules=all', '--no-renames'],
    opts,
  );
  return r.stdout.length > 0;
}

/**
 * Removes a session's worktree and (unless keepBranch) its branch. Refuses, unless force, while the
 * caller says changes from it are still unapplied (their blobs live on that branch), or while the
 * worktree holds uncaptured edits.
 */
export async function removeSessionWorktree(input: {
  repoPath: string;
  path: string;
  branch: string;
  hasUnappliedChanges: boolean;
  force?: boolean;
  keepBranch?: boolean;
}): Promise<void> {
  // Only boocoder's own branches: a caller bug must never delete a user's branch.
  if (!input.branch.startsWith(SESSION_BRANCH_PREFIX)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `refusing to delete the branch ${input.branch}: not a session branch`,
    );
  }
  sessionBranchName(input.branch.slice(SESSION_BRANCH_PREFIX.length));
  const force = input.force === true;
  if (input.hasUnappliedChanges && !force) {
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      'the session still has changes that are neither applied nor rejected; review them first, or force the removal',
    );
  }
  const repo = await resolveRepository(input.repoPath);
  await serialised(repo.commonDir, () => removeWorktreeFolder(repo, input, force));
}

async function removeWorktreeFolder(
  repo: Awaited<ReturnType<typeof resolveRepository>>,
  input: { path: string; branch: string; keepBranch?: boolean },
  force: boolean,
): Promise<void> {
  const repoOpts = await hardenedOptions({ cwd: repo.rootPath });
  const present = await exists(input.path);
  const registered = present
    ? await findWorktreeAdminDir(repo.commonDir, await realpath(input.path))
    : undefined;
  if (registered) {
    if (!force && (await isWorktreeDirty(repo.rootPath, input.path))) {
      throw new BoocoderError(
        'E_WORKTREE_FAILED',
        'the session worktree has uncaptured edits; capture them first, or force the removal',
      );
    }
    // Not `git worktree remove`: it trusts the worktree's own `.git` file, which an agent may have
    // rewritten. The registration was found in the user's repository, so the folder is ours.
    await rm(await realpath(input.path), { recursive: true, force: true });
  } else if (present) {
    await clearDebris(repo.rootPath, repo.commonDir, await realpath(input.path), repoOpts);
  }
  await runGit(['worktree', 'prune'], repoOpts);
  if (input.keepBranch !== true) {
    await runGit(['update-ref', '-d', `refs/heads/${input.branch}`], repoOpts);
  }
}

/** `git worktree prune`, queued behind this process's other worktree changes to the repository. */
export async function pruneWorktrees(repoPath: string): Promise<void> {
  const repo = await resolveRepository(repoPath);
  await serialised(repo.commonDir, async () =>
    runGit(['worktree', 'prune'], await hardenedOptions({ cwd: repo.rootPath })),
  );
}
