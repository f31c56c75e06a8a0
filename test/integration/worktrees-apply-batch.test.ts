/**
 * applyFileChanges / revertFileChanges: a batch of captured changes lands all or nothing, in real
 * temp repositories. A moved base, two changes of one path, or a write that fails half-way through
 * leaves the user's checkout byte for byte as it was.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChanges, revertFileChanges } from '../../src/worktrees/apply-batch.js';
import type { FileChange } from '../../src/worktrees/apply-guards.js';
import { blobOidOf, readBlobs } from '../../src/worktrees/blob-batch.js';
import { type CapturedChange, captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, snapshot, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const EDITS = 24;
const binary = Buffer.from([0, 159, 146, 150, 13, 10, 0, 255, 13]);

/** A repository and what an agent changed in its session worktree: edits, a create, a delete, a chmod. */
async function agentChanges(
  extra: (wt: string) => Promise<void> = async () => {},
): Promise<{ repo: string; changes: CapturedChange[] }> {
  const files: Record<string, string> = { 'gone.txt': 'bye\n', 'run.sh': 'echo\n', 'file-then-dir': 'f\n' };
  for (let i = 0; i < EDITS; i++) files[`src/e${i}.txt`] = `before ${i}\n`;
  const repo = await repos.repo(files);
  const wt = await ensureSessionWorktree({
    repoPath: repo,
    worktreesRoot: await repos.dir(),
    sessionId: 's',
  });
  const edits: Record<string, string | Buffer> = { 'deep/new/file.bin': binary };
  for (let i = 0; i < EDITS; i++) edits[`src/e${i}.txt`] = `after ${i}\n`;
  await writeFiles(wt.path, edits);
  await unlink(join(wt.path, 'gone.txt'));
  await chmod(join(wt.path, 'run.sh'), 0o755);
  await extra(wt.path);
  const r = await captureChanges({
    repoPath: repo,
    worktreePath: wt.path,
    sinceCommit: wt.headCommit,
    message: 'm',
    limits: { maxFiles: 100, maxDiffBytes: 100_000 },
  });
  return { repo, changes: r.changes };
}

async function rejectsWith(p: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  await expect(p).rejects.toSatisfy(
    (e: unknown) => isBoocoderError(e) && e.code === code && (!text || text.test(e.message)),
  );
}

describe('applyFileChanges / revertFileChanges', () => {
  it('applies a whole batch with exact bytes and modes, and a batch revert restores every file', async () => {
    const { repo, changes } = await agentChanges();
    expect(changes.length).toBe(EDITS + 3);
    const before = await snapshot(repo);
    await applyFileChanges(repo, changes);
    for (let i = 0; i < EDITS; i++)
      expect(await readFile(join(repo, `src/e${i}.txt`), 'utf8')).toBe(`after ${i}\n`);
    expect((await readFile(join(repo, 'deep/new/file.bin'))).equals(binary)).toBe(true);
    await expect(stat(join(repo, 'gone.txt'))).rejects.toThrow(/ENOENT/);
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).not.toBe(0);
    // A retried batch finds every file already in place and writes nothing.
    await applyFileChanges(repo, changes);

    await revertFileChanges(repo, changes);
    expect(await snapshot(repo)).toEqual(before);
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).toBe(0);
    await expect(stat(join(repo, 'deep'))).rejects.toThrow(/ENOENT/);
  });

  it('finishes a batch a crash left half-written when the same batch is applied again', async () => {
    const { repo, changes } = await agentChanges();
    const whole = await agentChanges();
    await applyFileChanges(whole.repo, whole.changes);
    await applyFileChanges(repo, changes.slice(0, Math.floor(changes.length / 2)));
    await applyFileChanges(repo, changes);
    expect(await snapshot(repo)).toEqual(await snapshot(whole.repo));
  });

  it('writes nothing when one base moved and does not merge, and the error names that file', async () => {
    const { repo, changes } = await agentChanges();
    await writeFile(join(repo, 'src/e17.txt'), 'the user edited this\n');
    const before = await snapshot(repo);
    await rejectsWith(applyFileChanges(repo, changes), 'E_MERGE_CONFLICT', /"src\/e17.txt" changed/);
    expect(await snapshot(repo)).toEqual(before);
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).toBe(0);
  });

  it('a batch revert refuses, writing nothing, when one applied file was edited afterwards', async () => {
    const { repo, changes } = await agentChanges();
    await applyFileChanges(repo, changes);
    await writeFile(join(repo, 'gone.txt'), 'recreated by the user\n');
    const after = await snapshot(repo);
    await rejectsWith(revertFileChanges(repo, changes), 'E_BASE_MOVED', /"gone.txt" changed/);
    expect(await snapshot(repo)).toEqual(after);
  });

  it('refuses two changes of one path (however spelled) with E_INVALID_INPUT before any write', async () => {
    const { repo, changes } = await agentChanges();
    const edit = changes.find((c) => c.filePath === 'src/e3.txt') as CapturedChange;
    const before = await snapshot(repo);
    for (const twin of [edit, { ...edit, filePath: './src//e3.txt' }]) {
      await rejectsWith(applyFileChanges(repo, [...changes, twin]), 'E_INVALID_INPUT', /"src\/e3.txt"/);
    }
    expect(await snapshot(repo)).toEqual(before);
  });

  it('reads packed blobs through git, checked against their ids, not fooled by planted loose files', async () => {
    const { repo, changes } = await agentChanges();
    git(repo, 'gc', '-q', '--prune=now'); // every object packed, no loose file left
    const bin = changes.find((c) => c.filePath === 'deep/new/file.bin') as CapturedChange;
    const edit = changes.find((c) => c.filePath === 'src/e0.txt') as CapturedChange;
    const loose = (oid: string) => join(repo, '.git', 'objects', oid.slice(0, 2), oid.slice(2));
    for (const c of [bin, edit]) await mkdir(join(loose(c.resultOid as string), '..'), { recursive: true });
    // A FIFO would block a plain open() until a writer came; other bytes must not pass for the blob.
    execFileSync('mkfifo', [loose(bin.resultOid as string)]);
    await writeFile(loose(edit.resultOid as string), deflateSync(Buffer.from('blob 6\0forged')));

    const oids = changes.flatMap((c) => [c.baseOid, c.resultOid]).filter((o): o is string => o !== null);
    const blobs = await readBlobs(repo, oids);
    expect(blobs.size).toBe(new Set(oids).size);
    for (const [oid, bytes] of blobs) expect(blobOidOf(bytes)).toBe(oid);

    await applyFileChanges(repo, changes);
    expect((await readFile(join(repo, 'deep/new/file.bin'))).equals(binary)).toBe(true);
    expect(await readFile(join(repo, 'src/e0.txt'), 'utf8')).toBe('after 0\n');
    await rejectsWith(readBlobs(repo, [...oids, 'f'.repeat(40)]), 'E_GIT_FAILED', /not in the repository/);
    await rejectsWith(readBlobs(repo, ['--batch-all-objects']), 'E_INVALID_INPUT');
  });

  it('reads many packed blobs, large and small, from one git stream split at any point', async () => {
    // Blobs larger than a pipe's buffer arrive in many chunks; headers and bodies straddle them.
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) files[`f${i}.bin`] = randomBytes(i % 3 === 0 ? 200_000 + i : 10 + i);
    const repo = await repos.repo(files);
    git(repo, 'gc', '-q', '--prune=now');
    const oids = Object.values(files).map((bytes) => blobOidOf(bytes));
    const blobs = await readBlobs(repo, oids);
    for (const bytes of Object.values(files)) expect(blobs.get(blobOidOf(bytes))?.equals(bytes)).toBe(true);
  });

  it('puts back every file already written when a write in the middle fails', async () => {
    const { repo, changes } = await agentChanges();
    // A create that passes every check but cannot be written, even by root: its absolute path is
    // longer than the system allows (each segment and the relative path are within the policy).
    const blob = Buffer.from('unwritable\n');
    await writeFile(join(repo, 'blob.tmp'), blob);
    const oid = git(repo, 'hash-object', '-w', 'blob.tmp');
    await unlink(join(repo, 'blob.tmp'));
    const segment = 'x'.repeat(250);
    const tooLong: FileChange = {
      // 4,090 bytes: within the policy's 4,096, but past PATH_MAX once the repository's path is added.
      filePath: `${Array.from({ length: 16 }, () => segment).join('/')}/${'f'.repeat(4090 - 16 * 251)}`,
      operation: 'create',
      baseOid: null,
      resultOid: oid,
      baseMode: null,
      resultMode: '100644',
    };
    const before = await snapshot(repo);
    // Last of the writes: the deletion, the mode change and most edits are done when it fails.
    await rejectsWith(
      applyFileChanges(repo, [...changes, tooLong]),
      'E_WORKTREE_FAILED',
      /ENAMETOOLONG.*nothing was changed/,
    );
    expect(await snapshot(repo)).toEqual(before);
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).toBe(0);
    await expect(stat(join(repo, 'deep'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(repo, segment))).rejects.toThrow(/ENOENT/);
  });

  it('applies and reverts a file replaced by a folder, and a folder replaced by a file', async () => {
    const { repo, changes } = await agentChanges(async (wt) => {
      await unlink(join(wt, 'file-then-dir'));
      await writeFiles(wt, { 'file-then-dir/inside.txt': 'now a folder\n' });
    });
    const before = await snapshot(repo);
    await applyFileChanges(repo, changes);
    expect(await readFile(join(repo, 'file-then-dir/inside.txt'), 'utf8')).toBe('now a folder\n');
    await revertFileChanges(repo, changes);
    expect(await snapshot(repo)).toEqual(before);
    expect(await readFile(join(repo, 'file-then-dir'), 'utf8')).toBe('f\n');
  });
});
