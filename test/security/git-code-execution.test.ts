/**
 * Attack: make boocoder's git run attacker code. Traps are planted in the repository (hooks,
 * core.hooksPath, core.fsmonitor, diff.external, textconv, smudge/clean/process filters referenced
 * from .gitattributes) and by an "agent" inside its worktree (.gitattributes using those filters,
 * a nested repository with its own fsmonitor, and a rewritten `.git` file pointing at a git
 * directory full of traps). Every exported worktrees function is run; no marker may appear.
 * Each trap is first sprung with plain git in a twin repository, so the test proves it is armed.
 */
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyFileChange, revertFileChange } from '../../src/worktrees/apply-batch.js';
import { readBlob } from '../../src/worktrees/blob-batch.js';
import { captureChanges } from '../../src/worktrees/capture.js';
import { resolveRepository } from '../../src/worktrees/repository.js';
import { resetWorktree } from '../../src/worktrees/reset.js';
import {
  ensureSessionWorktree,
  isWorktreeDirty,
  removeSessionWorktree,
} from '../../src/worktrees/worktrees.js';
import { git, tempRepos, unprotectedGit, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

const HOOKS = ['post-checkout', 'pre-commit', 'post-commit', 'post-index-change', 'reference-transaction'];

async function script(path: string, marker: string): Promise<void> {
  await writeFile(path, `#!/bin/sh\ncat >/dev/null 2>&1 </dev/null\ntouch '${marker}'\nexit 0\n`);
  await chmod(path, 0o755);
}

/** Arms one git directory (`gitDir`) with every trap; markers land in `markers`. */
async function armGitDir(gitDir: string, configCwd: string, markers: string): Promise<void> {
  const traps = join(markers, '..', `traps-${Date.now()}-${Math.random()}`);
  await mkdir(join(traps, 'hooks'), { recursive: true });
  await mkdir(join(gitDir, 'hooks'), { recursive: true });
  for (const hook of HOOKS) {
    await script(join(gitDir, 'hooks', hook), join(markers, `hook-${hook}`));
    await script(join(traps, 'hooks', hook), join(markers, `hooksPath-${hook}`));
  }
  for (const name of ['fsmonitor', 'external-diff', 'textconv', 'clean', 'smudge']) {
    await script(join(traps, name), join(markers, name));
  }
  const set = (key: string, value: string) => git(configCwd, `--git-dir=${gitDir}`, 'config', key, value);
  set('core.hooksPath', join(traps, 'hooks'));
  set('core.fsmonitor', join(traps, 'fsmonitor'));
  set('diff.external', join(traps, 'external-diff'));
  set('diff.evil.textconv', join(traps, 'textconv'));
  set('filter.evil.clean', join(traps, 'clean'));
  set('filter.evil.smudge', join(traps, 'smudge'));
  // A driver name `git -c` could not override (it splits at the first `=`).
  set('filter.x=y.clean', join(traps, 'clean'));
  set('filter.x=y.required', 'true');
}

const ATTRIBUTES = '* filter=evil diff=evil\n*.xy filter=x=y\n';

async function armedRepo(): Promise<{ repo: string; markers: string }> {
  const repo = await repos.repo({ 'README.md': '# demo\n', 'src/app.js': 'let a = 1;\n', 'data.xy': 'xy\n' });
  await writeFile(join(repo, '.gitattributes'), ATTRIBUTES);
  git(repo, 'add', '.gitattributes');
  git(repo, 'commit', '-q', '-m', 'attributes');
  const markers = join(await repos.dir(), 'markers');
  await mkdir(markers);
  await armGitDir(join(repo, '.git'), repo, markers);
  return { repo, markers };
}

describe('the traps are armed (plain git springs them)', () => {
  it('hooks, hooksPath, fsmonitor, diff.external and filters all run under unprotected git', async () => {
    const { repo, markers } = await armedRepo();
    await writeFile(join(repo, 'src/app.js'), 'let a = 2;\n');
    const attempts = [
      ['status'],
      ['diff'],
      ['commit', '-q', '-am', 'edit'],
      ['worktree', 'add', '-q', join(await repos.dir(), 'w'), 'HEAD'],
      // A checkout touching no filtered file: post-checkout fires even when the worktree add above
      // stopped at the required filter first.
      ['checkout', '-q', 'HEAD', '--', 'README.md'],
    ];
    for (const args of attempts) {
      try {
        unprotectedGit(repo, ...args);
      } catch {
        // the `x=y` filter is required but has no smudge command: git fails after the other traps ran
      }
    }
    const fired = await readdir(markers);
    for (const m of ['fsmonitor', 'external-diff', 'clean', 'smudge']) expect(fired).toContain(m);
    for (const hook of ['post-checkout', 'pre-commit', 'post-commit', 'reference-transaction']) {
      expect(fired).toContain(`hooksPath-${hook}`);
    }
  });
});

describe('boocoder runs no code from the repository or the worktree', () => {
  let repo: string;
  let markers: string;
  beforeAll(async () => {
    ({ repo, markers } = await armedRepo());
  });

  it('through resolve, worktree, capture, reset, apply, revert and removal', async () => {
    expect((await resolveRepository(repo)).rootPath).toBe(repo);
    const worktreesRoot = await repos.dir();
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot, sessionId: 'trap-1' });
    await ensureSessionWorktree({ repoPath: repo, worktreesRoot, sessionId: 'trap-1' });

    // The agent's moves: edits under the filtered attributes, its own .gitattributes, a nested
    // repository armed with its own traps, and a `.git` file pointing at an armed git directory.
    await writeFiles(wt.path, {
      'src/app.js': 'let a = 3;\n',
      'new.xy': 'new\n',
      '.gitattributes': ATTRIBUTES,
      'nested/file.txt': 'n\n',
    });
    git(join(wt.path, 'nested'), 'init', '-q');
    await armGitDir(join(wt.path, 'nested', '.git'), join(wt.path, 'nested'), markers);
    const fakeGitDir = join(wt.path, '.evil-git');
    git(wt.path, 'init', '-q', '--bare', fakeGitDir);
    await armGitDir(fakeGitDir, wt.path, markers);
    await writeFile(join(wt.path, '.git'), `gitdir: ${fakeGitDir}\n`);

    expect(await isWorktreeDirty(repo, wt.path)).toBe(true);
    const captured = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'capture',
      limits: { maxFiles: 1000, maxDiffBytes: 100_000 },
    });
    // The capture went to the real session branch, not to the fake git directory.
    expect(git(repo, 'rev-parse', wt.branch)).toBe(captured.commit);
    const edit = captured.changes.find((c) => c.filePath === 'src/app.js');
    expect(edit?.diff).toContain('+let a = 3;');
    expect(captured.skipped.map((s) => s.filePath)).toContain('nested/');

    if (!edit) throw new Error('no capture of src/app.js');
    expect((await readBlob(repo, edit.resultOid as string)).toString()).toBe('let a = 3;\n');
    await applyFileChange(repo, edit);
    await revertFileChange(repo, edit);

    await resetWorktree({ repoPath: repo, worktreePath: wt.path, commit: wt.headCommit });
    await removeSessionWorktree({
      repoPath: repo,
      path: wt.path,
      branch: wt.branch,
      hasUnappliedChanges: false,
      force: true,
    });

    expect(await readdir(markers)).toEqual([]);
  });

  it('even when the worktree folder was deleted and is re-created (stale registration)', async () => {
    const worktreesRoot = await repos.dir();
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot, sessionId: 'trap-2' });
    await rm(wt.path, { recursive: true, force: true });
    await ensureSessionWorktree({ repoPath: repo, worktreesRoot, sessionId: 'trap-2' });
    await removeSessionWorktree({
      repoPath: repo,
      path: wt.path,
      branch: wt.branch,
      hasUnappliedChanges: false,
    });
    expect(await readdir(markers)).toEqual([]);
  });
});
