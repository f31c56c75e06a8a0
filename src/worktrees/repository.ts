/**
 * Locating a user's repository and the git directories of its session worktrees. Worktree commands
 * always name the worktree's git directory explicitly (GIT_DIR = <common>/worktrees/<id>) instead of
 * letting git discover it from `<worktree>/.git`: that file is inside the worktree, so an agent can
 * rewrite it to point at another git directory (its own config, or the user's main `.git`, whose
 * index and current branch capture would then overwrite).
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BoocoderError, isBoocoderError } from '../errors.js';
import { hardenedOptions, type RunGitOptions, runGit } from './git.js';

export interface Repository {
  /** realpath of the top level of the work tree */
  rootPath: string;
  /** the commit HEAD points at */
  headCommit: string;
  /** absolute path of the shared git directory (objects, refs, worktrees/) */
  commonDir: string;
}

/**
 * The error for a registered project whose folder is gone (moved or deleted since it was
 * registered). Without it the ENOENT of the first realpath surfaced as E_INTERNAL. `consequence`
 * says what was not done; the path itself stays out of the message (it is the server's host path).
 */
export function projectMissingError(consequence: string, cause?: unknown): BoocoderError {
  return new BoocoderError(
    'E_PROJECT_MISSING',
    `the project's repository folder is gone (moved or deleted), so ${consequence}. Put the repository back where it was and try again, or reject its pending changes (apply_change action=reject works without the folder); to work on the repository at its new place, queue a task with its new path, which registers it as a project`,
    {},
    { cause },
  );
}

/** Throws E_PROJECT_MISSING unless `rootPath` is still a folder. */
export async function requireProjectFolder(rootPath: string, consequence: string): Promise<void> {
  const info = await stat(rootPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  if (!info?.isDirectory()) throw projectMissingError(consequence);
}

async function realDirectory(path: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new BoocoderError(
      'E_NOT_A_GIT_REPO',
      `${path} does not exist; give the top-level folder of a git repository`,
    );
  }
  if (!(await stat(real)).isDirectory()) {
    throw new BoocoderError(
      'E_NOT_A_GIT_REPO',
      `${path} is not a folder; give the top-level folder of a git repository`,
    );
  }
  return real;
}

/**
 * Checks that `path` is the top level of a git work tree with at least one commit and returns its
 * realpath and HEAD commit.
 */
export async function resolveRepository(path: string): Promise<Repository> {
  const real = await realDirectory(path);
  let out: string;
  try {
    const r = await runGit(
      ['rev-parse', '--path-format=absolute', '--is-inside-work-tree', '--show-toplevel', '--git-common-dir'],
      { cwd: real },
    );
    out = r.stdout;
  } catch (err) {
    const stderr = isBoocoderError(err) ? String(err.details?.stderr ?? '') : '';
    const why = stderr.includes('dubious ownership')
      ? 'it belongs to another user, and git refuses to work in it'
      : 'it is not inside a git repository';
    throw new BoocoderError('E_NOT_A_GIT_REPO', `${path} cannot be used: ${why}`, {}, { cause: err });
  }
  const [inside, top, common] = out.split('\n');
  if (inside !== 'true' || !top || !common) {
    throw new BoocoderError('E_NOT_A_GIT_REPO', `${path} is not a git work tree (a bare repository?)`);
  }
  if ((await realpath(top)) !== real) {
    throw new BoocoderError(
      'E_NOT_A_GIT_REPO',
      `${path} is a folder inside a git repository, not its top level; give the repository's top-level folder`,
    );
  }
  const head = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
    cwd: real,
    okExitCodes: [1, 128],
  });
  const headCommit = head.stdout.trim();
  if (head.exitCode !== 0 || !headCommit) {
    throw new BoocoderError(
      'E_PROJECT_NO_COMMITS',
      `the repository at ${path} has no commits yet; commit something first (worktrees start from HEAD)`,
    );
  }
  return { rootPath: real, headCommit, commonDir: await realpath(common) };
}

/** The shared git directory of a repository whose top level is `repoRoot`. */
export async function commonDirOf(repoRoot: string): Promise<string> {
  const r = await runGit(['rev-parse', '--path-format=absolute', '--git-common-dir'], { cwd: repoRoot });
  return realpath(r.stdout.trim());
}

/**
 * Finds the administrative directory (`<common>/worktrees/<id>`) registered for `worktreePath`, by
 * reading the `gitdir` files git keeps there. Those live in the user's repository, out of the
 * agent's worktree, so they can be trusted. Returns undefined when none matches.
 */
export async function findWorktreeAdminDir(
  commonDir: string,
  worktreePath: string,
): Promise<string | undefined> {
  const wanted = join(worktreePath, '.git');
  let entries: string[];
  try {
    entries = await readdir(join(commonDir, 'worktrees'));
  } catch {
    return undefined;
  }
  // Read all at once: with many sessions, one after another would cost a round trip each.
  const recorded = await Promise.all(
    entries.map((name) =>
      readFile(join(commonDir, 'worktrees', name, 'gitdir'), 'utf8').then(
        (text) => text.trim(),
        () => undefined, // an entry without a gitdir file is debris that `git worktree prune` removes
      ),
    ),
  );
  const at = recorded.indexOf(wanted);
  return at === -1 ? undefined : join(commonDir, 'worktrees', entries[at] as string);
}

/**
 * Run options for git commands inside a session worktree: explicit GIT_DIR and GIT_WORK_TREE, and
 * every filter driver the configuration defines turned off.
 */
export async function worktreeGitOptions(repoPath: string, worktreePath: string): Promise<RunGitOptions> {
  const repoRoot = await realpath(repoPath);
  let worktree: string;
  try {
    worktree = await realpath(worktreePath);
  } catch {
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      'the session worktree folder is missing; start a new session',
    );
  }
  const admin = await findWorktreeAdminDir(await commonDirOf(repoRoot), worktree);
  if (!admin) {
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      'the session folder is not a registered worktree of this repository; start a new session',
    );
  }
  return hardenedOptions({ cwd: worktree, gitDir: admin, workTree: worktree });
}
