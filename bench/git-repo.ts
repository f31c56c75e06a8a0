/**
 * Plain git for the benchmarks: building repositories, and the peer commands of the change-capture
 * suite. It runs the system git with the user's and the system's config shut out, so the machine's
 * config cannot change the numbers, and with no hooks.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const GIT_ENV: Record<string, string> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@localhost',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@localhost',
  LC_ALL: 'C',
  // No background `gc --auto` after a commit: it repacks (and deletes loose objects) while the
  // capture suite copies the repository, and its load would land in someone's timing.
  GIT_CONFIG_COUNT: '1',
  GIT_CONFIG_KEY_0: 'gc.auto',
  GIT_CONFIG_VALUE_0: '0',
};

export interface GitOutput {
  stdout: Buffer;
  stderr: string;
}

/** Runs a command (git, or sh -c for a pipeline) in cwd; rejects on a non-zero exit. */
export function runCommand(
  command: string,
  args: readonly string[],
  cwd: string,
  input?: string | Buffer,
): Promise<GitOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: GIT_ENV,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(0, 2000)}`));
    });
    if (input !== undefined) {
      // A command that exits without reading all its input (an error) must not crash the bench.
      child.stdin?.on('error', () => {});
      child.stdin?.end(input);
    }
  });
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await runCommand('git', ['-c', 'core.hooksPath=/dev/null', ...args], cwd)).stdout
    .toString('utf8')
    .trim();
}

export async function tempDir(prefix: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `boocoder-bench-${prefix}-`)));
}

/** Writes `files` (path → content) under root, creating folders. */
export async function writeFiles(root: string, files: Iterable<readonly [string, string]>): Promise<void> {
  const made = new Set<string>();
  for (const [rel, content] of files) {
    const dir = dirname(join(root, rel));
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    await writeFile(join(root, rel), content);
  }
}

/** A repository in a new temp folder with one commit holding `files`. */
export async function makeRepo(prefix: string, files: Iterable<readonly [string, string]>): Promise<string> {
  const root = await tempDir(prefix);
  await git(root, 'init', '-q', '-b', 'main');
  await writeFiles(root, files);
  await git(root, 'add', '-A');
  await git(root, 'commit', '-q', '-m', 'initial');
  return root;
}
