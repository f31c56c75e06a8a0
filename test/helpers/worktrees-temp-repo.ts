/**
 * Real git repositories in temp folders for the worktrees tests. Set-up runs the system git with
 * the user's and the system's config shut out (so the machine's config cannot change results) and
 * with hooks off (so planting a trap does not spring it during set-up).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const setupEnv: Record<string, string> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@localhost',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@localhost',
  LC_ALL: 'C',
};

/** Runs git for test set-up (hooks off). */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'core.hooksPath=/dev/null', ...args], {
    cwd,
    env: setupEnv,
    encoding: 'utf8',
  }).trim();
}

/** Runs git the way an unprotected tool would: repository config and hooks fully in force. */
export function unprotectedGit(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: setupEnv, encoding: 'utf8', stdio: 'pipe' }).trim();
}

export interface TempRepos {
  /** a fresh folder (realpath) that is removed by cleanup() */
  dir(): Promise<string>;
  /** a repository with one commit holding `files` */
  repo(files?: Record<string, string | Buffer>): Promise<string>;
  cleanup(): Promise<void>;
}

export function tempRepos(): TempRepos {
  const made: string[] = [];
  const dir = async () => {
    const d = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-wt-')));
    made.push(d);
    return d;
  };
  return {
    dir,
    async repo(files = { 'README.md': '# demo\n' }) {
      const root = await dir();
      git(root, 'init', '-q', '-b', 'main');
      await writeFiles(root, files);
      git(root, 'add', '-A');
      git(root, 'commit', '-q', '-m', 'initial');
      return root;
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

export async function writeFiles(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

/** Every file under root (except .git) with its bytes: to prove a repository was not touched. */
export async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === '.git' && prefix === '') continue;
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) await walk(abs, rel);
      else if (entry.isSymbolicLink()) out.set(rel, 'symlink');
      else out.set(rel, (await readFile(abs)).toString('base64'));
    }
  };
  await walk(root, '');
  return out;
}
