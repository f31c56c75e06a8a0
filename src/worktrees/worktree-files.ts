/**
 * Copies the checkout's ignored files a worktree needs (`.env`, local config, installed
 * dependencies) into a new session worktree, the way Claude Code honours `.worktreeinclude`: a file
 * is copied only if it matches one of the patterns (.gitignore syntax: the project settings' `copy`
 * and the repository's `.worktreeinclude`) AND git ignores it. Tracked files are in the worktree
 * already; untracked, unignored ones are work in progress that is not the agent's to see.
 *
 * Copies, never links: a hard link or symlink would let the agent write through the worktree into
 * the user's checkout. A reflink (copy-on-write clone) where the file system offers one, so copying
 * node_modules costs little there; elsewhere a plain copy.
 */
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, realpath } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { BoocoderError } from '../errors.js';
import { hardenedOptions, runGitBuffer } from './git.js';

export const WORKTREE_INCLUDE_FILE = '.worktreeinclude';
/** More files than this is a pattern that matches too much (a whole cache folder): refused. */
export const MAX_COPIED_FILES = 200_000;
const LISTING_MAX_BYTES = 128 * 1024 * 1024;
const PARALLEL_COPIES = 8;

function splitZ(buf: Buffer): string[] {
  return buf
    .toString('utf8')
    .split('\0')
    .filter((p) => p !== '');
}

/** The checkout's ignored files that match the patterns or `.worktreeinclude`, relative paths. */
export async function listFilesToCopy(repoRoot: string, patterns: readonly string[]): Promise<string[]> {
  const include = join(repoRoot, WORKTREE_INCLUDE_FILE);
  const hasInclude = (await lstat(include).catch(() => undefined))?.isFile() === true;
  if (patterns.length === 0 && !hasInclude) return [];
  const opts = { ...(await hardenedOptions({ cwd: repoRoot })), maxBuffer: LISTING_MAX_BYTES };
  const base = ['ls-files', '-z', '--others', '--ignored'];
  // `--exclude=<pattern>` in one argument: a pattern starting with `-` cannot become an option.
  const wanted = [
    ...patterns.map((p) => `--exclude=${p}`),
    ...(hasInclude ? [`--exclude-from=${include}`] : []),
  ];
  const [matching, ignored] = await Promise.all([
    runGitBuffer([...base, ...wanted], opts),
    runGitBuffer([...base, '--exclude-standard'], opts),
  ]);
  const ignoredSet = new Set(splitZ(ignored.stdout));
  const files = splitZ(matching.stdout).filter((p) => ignoredSet.has(p));
  if (files.length > MAX_COPIED_FILES) {
    throw new BoocoderError(
      'E_SETUP_FAILED',
      `the copy patterns match ${files.length} files (at most ${MAX_COPIED_FILES}); narrow them, or install them with a setup command`,
    );
  }
  return files;
}

const inside = (root: string, path: string) => path === root || path.startsWith(root + sep);

/**
 * Copies one file. Both ends are checked after their folders resolve: a symlinked folder in the
 * checkout must not make boocoder copy a file from outside it, and one committed in the
 * repository (so present in the worktree) must not turn the copy into a write outside the
 * worktree. An existing file is left alone (a re-run after a failed setup, a tracked file).
 */
async function copyOne(repoRoot: string, worktree: string, rel: string): Promise<boolean> {
  const from = join(repoRoot, rel);
  const info = await lstat(from).catch(() => undefined);
  if (!info?.isFile()) return false;
  if (!inside(repoRoot, await realpath(dirname(from)))) return false;
  const to = join(worktree, rel);
  await mkdir(dirname(to), { recursive: true });
  if (!inside(worktree, await realpath(dirname(to)))) return false;
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Copies the files into the worktree; returns how many were copied. */
export async function copyIncludedFiles(
  repoRoot: string,
  worktreePath: string,
  patterns: readonly string[],
): Promise<number> {
  const root = await realpath(repoRoot);
  const worktree = await realpath(worktreePath);
  const files = await listFilesToCopy(root, patterns);
  let next = 0;
  let copied = 0;
  const worker = async () => {
    while (next < files.length) {
      const rel = files[next++] as string;
      if (await copyOne(root, worktree, rel)) copied++;
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_COPIES }, worker));
  return copied;
}
