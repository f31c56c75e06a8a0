/**
 * A file an agent writes through a folder named like `.git` (`.GIT`, `git~1`, `.git.`) is never
 * recorded, on the loose path or the fast-import pack path: a tree entry with such a name is the
 * repository folder itself once checked out on a case-insensitive file system (CVE-2014-9390), where
 * it could plant hooks or config. git's own index refuses these names; fast-import does not.
 */
import { afterEach, expect, it } from 'vitest';
import { captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const planted = ['sub/.GIT/config', 'GIT~1/hooks/x', 'd0/.Git', 'x/.git./y'];

it.each([
  ['the pack path', 1],
  ['the loose path', Number.POSITIVE_INFINITY],
])('skips them with a reason on %s, and the tree passes fsck --strict', async (_, packThreshold) => {
  const repo = await repos.repo();
  const wt = await ensureSessionWorktree({
    repoPath: repo,
    worktreesRoot: await repos.dir(),
    sessionId: 's',
  });
  await writeFiles(wt.path, Object.fromEntries(planted.map((p) => [p, 'planted\n'])));
  await writeFiles(wt.path, { 'kept.txt': 'an ordinary file\n' });
  const r = await captureChanges({
    repoPath: repo,
    worktreePath: wt.path,
    sinceCommit: wt.headCommit,
    message: 'm',
    limits: { maxFiles: 100, maxDiffBytes: 64 * 1024 },
    packThreshold,
  });
  expect(r.changes.map((c) => c.filePath)).toEqual(['kept.txt']);
  expect(r.skipped.map((s) => s.filePath).sort()).toEqual([...planted].sort());
  expect(git(repo, 'ls-tree', '-r', '--name-only', r.commit)).not.toMatch(/git/i);
  git(repo, 'fsck', '--strict', '--no-progress', '--no-dangling');
});
