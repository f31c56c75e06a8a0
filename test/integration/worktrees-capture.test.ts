import { execFileSync } from 'node:child_process';
import { chmod, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
import { type CapturedChange, captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree, type SessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const limits = { maxFiles: 100, maxDiffBytes: 64 * 1024 };

async function session(
  files: Record<string, string | Buffer>,
): Promise<{ repo: string; wt: SessionWorktree }> {
  const repo = await repos.repo(files);
  const wt = await ensureSessionWorktree({
    repoPath: repo,
    worktreesRoot: await repos.dir(),
    sessionId: 's',
  });
  return { repo, wt };
}

function byPath(changes: CapturedChange[]): Record<string, CapturedChange> {
  return Object.fromEntries(changes.map((c) => [c.filePath, c]));
}

describe('captureChanges', () => {
  it('captures create, edit, delete, untracked, binary and the executable bit, honouring .gitignore', async () => {
    const { repo, wt } = await session({
      'edit.txt': 'one\ntwo\n',
      'gone.txt': 'bye\n',
      'tool.sh': 'echo hi\n',
      '.gitignore': '*.log\n',
    });
    const bin = Buffer.from([0, 1, 2, 255, 0, 10]);
    await writeFiles(wt.path, {
      'edit.txt': 'one\nTWO\n',
      'dir/new.txt': 'new\n',
      'img.bin': bin,
      'debug.log': 'x',
    });
    await unlink(join(wt.path, 'gone.txt'));
    await chmod(join(wt.path, 'tool.sh'), 0o755);

    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'task 1',
      limits,
    });
    const c = byPath(r.changes);
    expect(Object.keys(c).sort()).toEqual(['dir/new.txt', 'edit.txt', 'gone.txt', 'img.bin', 'tool.sh']);
    expect(c['edit.txt']).toMatchObject({
      operation: 'edit',
      baseOid: blobOidOf(Buffer.from('one\ntwo\n')),
      resultOid: blobOidOf(Buffer.from('one\nTWO\n')),
      baseMode: '100644',
      resultMode: '100644',
      unsafe: false,
    });
    expect(c['edit.txt']?.diff).toMatch(/^diff --git a\/edit.txt b\/edit.txt\n[\s\S]*-two\n\+TWO\n$/);
    expect(c['edit.txt']?.diffBytes).toBe(Buffer.byteLength(c['edit.txt']?.diff ?? ''));
    expect(c['dir/new.txt']).toMatchObject({
      operation: 'create',
      baseOid: null,
      baseMode: null,
      resultMode: '100644',
    });
    expect(c['gone.txt']).toMatchObject({ operation: 'delete', resultOid: null, resultMode: null });
    expect(c['img.bin']?.diff).toContain('Binary files /dev/null and b/img.bin differ');
    expect(c['img.bin']?.resultOid).toBe(blobOidOf(bin));
    expect(c['tool.sh']).toMatchObject({ operation: 'edit', baseMode: '100644', resultMode: '100755' });

    // The commit is on the session branch, child of the previous head, and holds the worktree exactly.
    expect(git(repo, 'rev-parse', wt.branch)).toBe(r.commit);
    expect(git(repo, 'rev-parse', `${r.commit}^`)).toBe(wt.headCommit);
    expect(git(repo, 'log', '-1', '--format=%an <%ae> %s', r.commit)).toBe(
      'boocoder <boocoder@localhost> task 1',
    );
    expect(git(repo, 'symbolic-ref', 'HEAD')).toBe('refs/heads/main');
    expect(git(repo, 'status', '--porcelain')).toBe('');
  });

  it('lets the next capture see only the next changes, and makes no commit when nothing changed', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n' });
    await writeFile(join(wt.path, 'a.txt'), 'a2\n');
    const first = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: '1',
      limits,
    });
    await writeFile(join(wt.path, 'b.txt'), 'b\n');
    const second = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: first.commit,
      message: '2',
      limits,
    });
    expect(second.changes.map((c) => c.filePath)).toEqual(['b.txt']);
    const none = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: second.commit,
      message: '3',
      limits,
    });
    expect(none).toEqual({ commit: second.commit, changes: [], skipped: [] });
    expect(git(repo, 'rev-parse', wt.branch)).toBe(second.commit);
  });

  it('includes commits the agent made itself, and reports a rename as delete + create', async () => {
    const { repo, wt } = await session({ 'old.txt': 'same content\n' });
    git(wt.path, 'mv', 'old.txt', 'new.txt');
    git(wt.path, 'commit', '-q', '-m', 'agent rename');
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    expect(r.changes.map((c) => [c.filePath, c.operation])).toEqual([
      ['new.txt', 'create'],
      ['old.txt', 'delete'],
    ]);
  });

  it('flags paths the policy refuses and symlinks as unsafe, but still captures them', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n' });
    await writeFiles(wt.path, { '.gitmodules': '[submodule "x"]\n', 'bad\nname.txt': 'x' });
    await symlink('/etc/passwd', join(wt.path, 'link'));
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    const c = byPath(r.changes);
    expect(c['.gitmodules']).toMatchObject({ unsafe: true, operation: 'create' });
    expect(c['bad\nname.txt']).toMatchObject({ unsafe: true });
    expect(c.link).toMatchObject({
      unsafe: true,
      resultMode: '120000',
      resultOid: blobOidOf(Buffer.from('/etc/passwd')),
    });
    expect(c.link?.unsafeReason).toMatch(/symlink/);
  });

  it('skips FIFOs and nested repositories instead of hanging or making a submodule', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n' });
    // Node has no mkfifo. A FIFO read by hash-object would block the capture forever.
    execFileSync('mkfifo', [join(wt.path, 'pipe')]);
    await unlink(join(wt.path, 'a.txt'));
    execFileSync('mkfifo', [join(wt.path, 'a.txt')]);
    await writeFiles(wt.path, { 'inner/x.txt': 'x' });
    git(join(wt.path, 'inner'), 'init', '-q');
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    expect(r.changes).toEqual([]);
    // git lists no untracked FIFO at all; a tracked file turned FIFO is seen, and skipped.
    expect(r.skipped.map((s) => s.filePath).sort()).toEqual(['a.txt', 'inner/']);
  });

  it('stores a placeholder past the per-file diff limit, with the real size', async () => {
    const { repo, wt } = await session({ 'big.txt': 'x\n' });
    const big = 'line of text\n'.repeat(1000);
    await writeFile(join(wt.path, 'big.txt'), big);
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits: { maxFiles: 10, maxDiffBytes: 1000 },
    });
    const [c] = r.changes;
    expect(c?.diffBytes).toBeGreaterThan(13_000);
    expect(c?.diff).toContain('over the 1000-byte limit');
    expect(Buffer.byteLength(c?.diff ?? '')).toBeLessThan(1000);
    expect(c?.resultOid).toBe(blobOidOf(Buffer.from(big)));
  });

  it('stages a file turned folder, a folder turned file and an index the agent half-staged', async () => {
    const { repo, wt } = await session({ a: 'file a\n', 'd/x.txt': 'x\n' });
    await rm(join(wt.path, 'a'));
    await rm(join(wt.path, 'd'), { recursive: true });
    await writeFiles(wt.path, { 'a/b.txt': 'b\n', d: 'file d\n', 'c.txt': 'staged\n' });
    git(wt.path, 'add', 'c.txt');
    await writeFile(join(wt.path, 'c.txt'), 'final\n');
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    expect(r.changes.map((c) => [c.filePath, c.operation])).toEqual([
      ['a', 'delete'],
      ['a/b.txt', 'create'],
      ['c.txt', 'create'],
      ['d', 'create'],
      ['d/x.txt', 'delete'],
    ]);
    expect(byPath(r.changes)['c.txt']?.resultOid).toBe(blobOidOf(Buffer.from('final\n')));
    // Index and worktree agree afterwards: the next capture starts from a clean status.
    expect(git(wt.path, 'status', '--porcelain')).toBe('');
  });

  it('commits what the agent staged and left alone, and a symlink; index, tree and commit agree', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n', 'd/k.txt': 'k\n' });
    await writeFiles(wt.path, { 'a.txt': 'a2\n', 'staged.txt': 's\n' });
    git(wt.path, 'add', 'a.txt', 'staged.txt'); // index differs from HEAD, worktree from neither
    git(wt.path, 'rm', '-q', '--cached', 'b.txt'); // out of the index, still in the worktree
    git(wt.path, 'rm', '-q', 'c.txt', 'd/k.txt'); // gone from both: so is folder d
    await symlink('a.txt', join(wt.path, 'ln'));
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    expect(r.changes.map((c) => [c.filePath, c.operation])).toEqual([
      ['a.txt', 'edit'],
      ['c.txt', 'delete'],
      ['d/k.txt', 'delete'],
      ['ln', 'create'],
      ['staged.txt', 'create'],
    ]);
    expect(byPath(r.changes).ln?.resultOid).toBe(blobOidOf(Buffer.from('a.txt')));
    expect(git(repo, 'ls-tree', '--name-only', r.commit)).toBe('a.txt\nb.txt\nln\nstaged.txt');
    expect(git(wt.path, 'write-tree')).toBe(git(repo, 'rev-parse', `${r.commit}^{tree}`));
    expect(git(wt.path, 'status', '--porcelain')).toBe('');
    // The user's branches are untouched.
    expect(git(repo, 'for-each-ref', '--format=%(refname)', 'refs/heads/')).toBe(
      `refs/heads/${wt.branch}\nrefs/heads/main`,
    );
  });

  it('refuses too many files without moving the branch', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n' });
    for (let i = 0; i < 5; i++) await writeFile(join(wt.path, `f${i}.txt`), `${i}`);
    const tooMany = { maxFiles: 4, maxDiffBytes: 1000 };
    const call = captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits: tooMany,
    });
    await expect(call).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_TOO_MANY_FILES'));
    // Edits (not certain changes) are counted after staging: still refused, still no commit.
    await rm(join(wt.path, 'f4.txt'));
    git(wt.path, 'add', '-A');
    git(wt.path, 'commit', '-q', '-m', 'agent');
    const tip = git(wt.path, 'rev-parse', 'HEAD');
    await writeFile(join(wt.path, 'a.txt'), 'edited');
    const again = captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits: tooMany,
    });
    await expect(again).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_TOO_MANY_FILES'));
    expect(git(repo, 'rev-parse', wt.branch)).toBe(tip);
  });

  it('refuses a folder that is not a registered worktree, and a sinceCommit that is not an object id', async () => {
    const { repo, wt } = await session({ 'a.txt': 'a\n' });
    const other = await repos.repo();
    const wrong = captureChanges({
      repoPath: other,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits,
    });
    await expect(wrong).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_WORKTREE_FAILED'));
    const injected = captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: '--output=/tmp/x',
      message: 'm',
      limits,
    });
    await expect(injected).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_INVALID_INPUT'));
  });
});
