/**
 * Copying the checkout's ignored files into a worktree never writes outside the worktree nor reads
 * outside the checkout, and never links: attacks through symlinks (a link committed in the
 * repository where the copy goes, an ignored link in the checkout pointing at a secret).
 */
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyIncludedFiles, listFilesToCopy } from '../../src/worktrees/worktree-files.js';
import { tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

describe('copying included files into a worktree', () => {
  it('does not follow a symlinked folder in the worktree out of it (a write outside)', async () => {
    const repo = await repos.repo({ '.gitignore': 'sub/\n' });
    await writeFiles(repo, { 'sub/.env': 'TOKEN=1\n' });
    const outside = await repos.dir();
    const worktree = await repos.dir();
    await symlink(outside, join(worktree, 'sub'));
    expect(await listFilesToCopy(repo, ['sub/'])).toEqual(['sub/.env']);
    expect(await copyIncludedFiles(repo, worktree, ['sub/'])).toBe(0);
    expect(await readdir(outside)).toEqual([]);
  });

  it('does not copy an ignored symlink of the checkout (a read of a file outside it)', async () => {
    const repo = await repos.repo({ '.gitignore': '.env\n' });
    const secretDir = await repos.dir();
    await writeFile(join(secretDir, 'id_rsa'), 'secret\n');
    await symlink(join(secretDir, 'id_rsa'), join(repo, '.env'));
    const worktree = await repos.dir();
    expect(await copyIncludedFiles(repo, worktree, ['.env'])).toBe(0);
    await expect(lstat(join(worktree, '.env'))).rejects.toThrow(/ENOENT/);
  });

  it('copies only ignored files, as independent copies, and never overwrites one already there', async () => {
    const repo = await repos.repo({ '.gitignore': '*.local\n', 'tracked.local.txt': 'x\n' });
    await writeFiles(repo, { 'a.local': 'a\n', 'deep/b.local': 'b\n', 'wip.txt': 'not ignored\n' });
    const worktree = await repos.dir();
    await mkdir(join(worktree, 'deep'));
    await writeFile(join(worktree, 'deep', 'b.local'), 'already here\n');
    // A pattern that looks like an option is only a pattern.
    expect(await copyIncludedFiles(repo, worktree, ['*.local', '--output=x', '*.txt'])).toBe(1);
    expect(await readFile(join(worktree, 'a.local'), 'utf8')).toBe('a\n');
    expect((await lstat(join(worktree, 'a.local'))).nlink).toBe(1);
    expect(await readFile(join(worktree, 'deep', 'b.local'), 'utf8')).toBe('already here\n');
    await expect(lstat(join(worktree, 'wip.txt'))).rejects.toThrow(/ENOENT/);
  });
});
