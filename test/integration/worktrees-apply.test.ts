import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChange, revertFileChange } from '../../src/worktrees/apply-batch.js';
import { blobOidOf, readBlob } from '../../src/worktrees/blob-batch.js';
import { type CapturedChange, captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, snapshot, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const binary = Buffer.from([0, 159, 146, 150, 13, 10, 0, 255, 13]);
const crlf = Buffer.from('line one\r\nline two\r\n');

/** A repository, and the changes an agent made in its session worktree. */
async function agentChanges(): Promise<{ repo: string; changes: Record<string, CapturedChange> }> {
  const repo = await repos.repo({
    'edit.txt': 'before\n',
    'gone.txt': 'bye\n',
    'run.sh': 'echo\n',
    'crlf.txt': 'x\n',
  });
  const wt = await ensureSessionWorktree({
    repoPath: repo,
    worktreesRoot: await repos.dir(),
    sessionId: 's',
  });
  await writeFiles(wt.path, { 'edit.txt': 'after\n', 'deep/new/file.bin': binary, 'crlf.txt': crlf });
  await unlink(join(wt.path, 'gone.txt'));
  await chmod(join(wt.path, 'run.sh'), 0o755);
  const r = await captureChanges({
    repoPath: repo,
    worktreePath: wt.path,
    sinceCommit: wt.headCommit,
    message: 'm',
    limits: { maxFiles: 100, maxDiffBytes: 100_000 },
  });
  return { repo, changes: Object.fromEntries(r.changes.map((c) => [c.filePath, c])) };
}

function change(changes: Record<string, CapturedChange>, path: string): CapturedChange {
  const c = changes[path];
  if (!c) throw new Error(`no change for ${path}`);
  return c;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => isBoocoderError(e) && e.code === code);
}

describe('applyFileChange / revertFileChange', () => {
  it('apply writes the exact bytes and modes; revert restores the repository byte for byte', async () => {
    const { repo, changes } = await agentChanges();
    const before = await snapshot(repo);
    for (const c of Object.values(changes)) await applyFileChange(repo, c);

    expect(await readFile(join(repo, 'edit.txt'), 'utf8')).toBe('after\n');
    expect((await readFile(join(repo, 'deep/new/file.bin'))).equals(binary)).toBe(true);
    expect((await readFile(join(repo, 'crlf.txt'))).equals(crlf)).toBe(true);
    await expect(stat(join(repo, 'gone.txt'))).rejects.toThrow();
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).not.toBe(0);

    for (const c of Object.values(changes).reverse()) await revertFileChange(repo, c);
    expect(await snapshot(repo)).toEqual(before);
    expect((await stat(join(repo, 'run.sh'))).mode & 0o111).toBe(0);
    await expect(stat(join(repo, 'deep'))).rejects.toThrow(); // folders a create made are gone again
  });

  it('a retried apply or revert of a change already in place succeeds without writing', async () => {
    const { repo, changes } = await agentChanges();
    const edit = change(changes, 'edit.txt');
    await applyFileChange(repo, edit);
    await applyFileChange(repo, edit);
    expect(await readFile(join(repo, 'edit.txt'), 'utf8')).toBe('after\n');
    await revertFileChange(repo, edit);
    await revertFileChange(repo, edit);
    expect(await readFile(join(repo, 'edit.txt'), 'utf8')).toBe('before\n');
  });

  it('refuses (E_MERGE_CONFLICT, E_BASE_MOVED) when the user changed the file, and writes nothing', async () => {
    const { repo, changes } = await agentChanges();
    await writeFile(join(repo, 'edit.txt'), 'the user edited this\n');
    await writeFile(join(repo, 'deep-sibling.txt'), 'x');
    await writeFiles(repo, { 'deep/new/file.bin': 'the user created this too' });
    await unlink(join(repo, 'gone.txt'));
    await writeFile(join(repo, 'gone.txt'), 'user rewrote it\n');
    const before = await snapshot(repo);
    // The user's rewrite of the one line the agent also rewrote: the merge conflicts.
    await rejectsWith(applyFileChange(repo, change(changes, 'edit.txt')), 'E_MERGE_CONFLICT');
    await rejectsWith(applyFileChange(repo, change(changes, 'deep/new/file.bin')), 'E_BASE_MOVED');
    await rejectsWith(applyFileChange(repo, change(changes, 'gone.txt')), 'E_BASE_MOVED');
    expect(await snapshot(repo)).toEqual(before);
  });

  it('revert refuses when the applied file was edited afterwards', async () => {
    const { repo, changes } = await agentChanges();
    const edit = change(changes, 'edit.txt');
    await applyFileChange(repo, edit);
    await writeFile(join(repo, 'edit.txt'), 'edited after apply\n');
    await rejectsWith(revertFileChange(repo, edit), 'E_BASE_MOVED');
    expect(await readFile(join(repo, 'edit.txt'), 'utf8')).toBe('edited after apply\n');
    const gone = change(changes, 'gone.txt');
    await applyFileChange(repo, gone);
    await writeFile(join(repo, 'gone.txt'), 'recreated by the user\n');
    await rejectsWith(revertFileChange(repo, gone), 'E_BASE_MOVED');
  });

  it('reads blobs by id from the shared object store and checks their bytes', async () => {
    const { repo, changes } = await agentChanges();
    const bin = change(changes, 'deep/new/file.bin');
    expect((await readBlob(repo, bin.resultOid as string)).equals(binary)).toBe(true);
    expect(blobOidOf(binary)).toBe(bin.resultOid);
    await rejectsWith(readBlob(repo, 'f'.repeat(40)), 'E_GIT_FAILED');
    await rejectsWith(readBlob(repo, '--batch'), 'E_INVALID_INPUT');
  });

  it('reads packed blobs too, and is not fooled or stalled by what is planted at a loose path', async () => {
    const { repo, changes } = await agentChanges();
    const bin = change(changes, 'deep/new/file.bin');
    const edit = change(changes, 'edit.txt');
    git(repo, 'gc', '-q', '--prune=now'); // every object packed, no loose file left
    const loose = (oid: string) => join(repo, '.git', 'objects', oid.slice(0, 2), oid.slice(2));
    await mkdir(join(loose(bin.resultOid as string), '..'), { recursive: true });
    await mkdir(join(loose(edit.resultOid as string), '..'), { recursive: true });
    // A FIFO would block a plain open() until a writer came; other bytes must not pass for the blob.
    execFileSync('mkfifo', [loose(bin.resultOid as string)]);
    await writeFile(loose(edit.resultOid as string), deflateSync(Buffer.from('blob 6\0forged')));
    expect((await readBlob(repo, bin.resultOid as string)).equals(binary)).toBe(true);
    expect((await readBlob(repo, edit.resultOid as string)).toString()).toBe('after\n');
  });
});
