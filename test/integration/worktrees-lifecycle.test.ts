import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { resolveRepository } from '../../src/worktrees/repository.js';
import { resetWorktree } from '../../src/worktrees/reset.js';
import {
  ensureSessionWorktree,
  isWorktreeDirty,
  removeSessionWorktree,
} from '../../src/worktrees/worktrees.js';
import { git, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return isBoocoderError(err) ? err.code : `non-boocoder: ${String(err)}`;
  }
  return undefined;
}

function worktreeList(repo: string): string[] {
  return git(repo, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length));
}

describe('resolveRepository', () => {
  it('returns the realpath and HEAD of a top-level work tree', async () => {
    const repo = await repos.repo();
    const r = await resolveRepository(`${repo}/./`);
    expect(r.rootPath).toBe(repo);
    expect(r.headCommit).toBe(git(repo, 'rev-parse', 'HEAD'));
    expect(r.commonDir).toBe(join(repo, '.git'));
  });

  it('refuses what is not the top level of a repository with commits', async () => {
    const repo = await repos.repo({ 'sub/x.txt': 'x' });
    expect(await codeOf(resolveRepository(join(repo, 'sub')))).toBe('E_NOT_A_GIT_REPO');
    expect(await codeOf(resolveRepository(await repos.dir()))).toBe('E_NOT_A_GIT_REPO');
    expect(await codeOf(resolveRepository(join(repo, 'missing')))).toBe('E_NOT_A_GIT_REPO');
    expect(await codeOf(resolveRepository(join(repo, 'sub', 'x.txt')))).toBe('E_NOT_A_GIT_REPO');
    const empty = await repos.dir();
    git(empty, 'init', '-q');
    expect(await codeOf(resolveRepository(empty))).toBe('E_PROJECT_NO_COMMITS');
    const bare = await repos.dir();
    git(bare, 'init', '-q', '--bare');
    expect(await codeOf(resolveRepository(bare))).toBe('E_NOT_A_GIT_REPO');
  });
});

describe('ensureSessionWorktree', () => {
  it('creates one worktree per session on its own branch, from HEAD', async () => {
    const repo = await repos.repo({ 'a.txt': 'a\n' });
    const root = await repos.dir();
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's-1' });
    const head = git(repo, 'rev-parse', 'HEAD');
    expect(wt).toEqual({
      path: join(root, 's-1'),
      branch: 'boocoder/session-s-1',
      baseCommit: head,
      headCommit: head,
    });
    expect(await readFile(join(wt.path, 'a.txt'), 'utf8')).toBe('a\n');
    expect(git(wt.path, 'symbolic-ref', 'HEAD')).toBe('refs/heads/boocoder/session-s-1');
    expect(git(repo, 'symbolic-ref', 'HEAD')).toBe('refs/heads/main'); // the user's checkout is untouched
  });

  it('is idempotent and reports the current HEAD of a reused worktree', async () => {
    const repo = await repos.repo();
    const root = await repos.dir();
    const first = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' });
    await writeFile(join(first.path, 'n.txt'), 'n');
    git(first.path, 'add', 'n.txt');
    git(first.path, 'commit', '-q', '-m', 'agent commit');
    const again = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' });
    expect(again.path).toBe(first.path);
    expect(again.baseCommit).toBe(first.baseCommit);
    expect(again.headCommit).toBe(git(first.path, 'rev-parse', 'HEAD'));
    expect(again.headCommit).not.toBe(first.headCommit);
    expect(worktreeList(repo)).toHaveLength(2);
  });

  it('serialises concurrent calls for one session', async () => {
    const repo = await repos.repo();
    const root = await repos.dir();
    const all = await Promise.all(
      [1, 2, 3].map(() => ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 'c' })),
    );
    expect(new Set(all.map((w) => w.path)).size).toBe(1);
    expect(worktreeList(repo)).toHaveLength(2);
  });

  it('recovers from a deleted folder (stale registration), keeping the branch and its commits', async () => {
    const repo = await repos.repo();
    const root = await repos.dir();
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' });
    await writeFile(join(wt.path, 'kept.txt'), 'k');
    git(wt.path, 'add', 'kept.txt');
    git(wt.path, 'commit', '-q', '-m', 'work');
    const tip = git(wt.path, 'rev-parse', 'HEAD');
    await rm(wt.path, { recursive: true, force: true });
    const again = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' });
    expect(again.headCommit).toBe(tip);
    expect(again.baseCommit).toBe(wt.baseCommit);
    expect(await readFile(join(again.path, 'kept.txt'), 'utf8')).toBe('k');
  });

  it('clears debris of a failed add (a folder that is no worktree)', async () => {
    const repo = await repos.repo({ 'a.txt': 'a' });
    const root = await repos.dir();
    await mkdir(join(root, 's', 'half'), { recursive: true });
    await writeFile(join(root, 's', 'half', 'junk'), 'x');
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' });
    expect(await readFile(join(wt.path, 'a.txt'), 'utf8')).toBe('a');
    await expect(stat(join(wt.path, 'half'))).rejects.toThrow();
  });

  it('refuses to delete a folder holding another git checkout', async () => {
    const repo = await repos.repo();
    const root = await repos.dir();
    await mkdir(join(root, 's'));
    git(join(root, 's'), 'init', '-q');
    expect(await codeOf(ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 's' }))).toBe(
      'E_WORKTREE_FAILED',
    );
    await expect(stat(join(root, 's', '.git'))).resolves.toBeTruthy();
  });

  it('rejects session ids that are not a plain name', async () => {
    const repo = await repos.repo();
    const root = await repos.dir();
    for (const sessionId of ['../x', 'a/b', '', '-x', 'a b', 'x'.repeat(200)]) {
      expect(await codeOf(ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId }))).toBe(
        'E_INVALID_INPUT',
      );
    }
  });
});

describe('resetWorktree', () => {
  it('discards edits, new files and commits of an abandoned attempt, keeping ignored files', async () => {
    const repo = await repos.repo({ 'a.txt': 'a', '.gitignore': 'build/\n' });
    const wt = await ensureSessionWorktree({
      repoPath: repo,
      worktreesRoot: await repos.dir(),
      sessionId: 's',
    });
    await writeFiles(wt.path, { 'a.txt': 'changed', 'new/x.txt': 'x', 'build/out.js': 'o' });
    git(wt.path, 'add', 'a.txt');
    git(wt.path, 'commit', '-q', '-m', 'abandoned');
    await resetWorktree({ repoPath: repo, worktreePath: wt.path, commit: wt.headCommit });
    expect(git(wt.path, 'rev-parse', 'HEAD')).toBe(wt.headCommit);
    expect(await readFile(join(wt.path, 'a.txt'), 'utf8')).toBe('a');
    await expect(stat(join(wt.path, 'new'))).rejects.toThrow();
    expect(await readFile(join(wt.path, 'build/out.js'), 'utf8')).toBe('o');
    expect(await isWorktreeDirty(repo, wt.path)).toBe(false);
  });
});

describe('removeSessionWorktree', () => {
  it('refuses while changes are unapplied or the worktree is dirty, unless forced', async () => {
    const repo = await repos.repo();
    const wt = await ensureSessionWorktree({
      repoPath: repo,
      worktreesRoot: await repos.dir(),
      sessionId: 's',
    });
    const base = { repoPath: repo, path: wt.path, branch: wt.branch };
    expect(await codeOf(removeSessionWorktree({ ...base, hasUnappliedChanges: true }))).toBe(
      'E_WORKTREE_FAILED',
    );
    await writeFile(join(wt.path, 'untracked.txt'), 'u');
    expect(await codeOf(removeSessionWorktree({ ...base, hasUnappliedChanges: false }))).toBe(
      'E_WORKTREE_FAILED',
    );
    await expect(stat(join(wt.path, 'untracked.txt'))).resolves.toBeTruthy();
    await removeSessionWorktree({ ...base, hasUnappliedChanges: true, force: true });
    await expect(stat(wt.path)).rejects.toThrow();
    expect(worktreeList(repo)).toEqual([repo]);
    expect(git(repo, 'branch', '--list', 'boocoder/*')).toBe('');
  });

  it('can keep the branch, and never deletes a branch that is not a session branch', async () => {
    const repo = await repos.repo();
    const wt = await ensureSessionWorktree({
      repoPath: repo,
      worktreesRoot: await repos.dir(),
      sessionId: 's',
    });
    expect(
      await codeOf(
        removeSessionWorktree({ repoPath: repo, path: wt.path, branch: 'main', hasUnappliedChanges: false }),
      ),
    ).toBe('E_INVALID_INPUT');
    await removeSessionWorktree({
      repoPath: repo,
      path: wt.path,
      branch: wt.branch,
      hasUnappliedChanges: false,
      keepBranch: true,
    });
    expect(git(repo, 'branch', '--list', 'boocoder/*')).toContain('boocoder/session-s');
    expect(git(repo, 'rev-parse', 'main')).toBe(wt.baseCommit);
  });
});
