/**
 * The pack path of change capture (capture-pack.ts) against the loose path: on identical worktrees
 * both must record the same blobs, the same tree and the same changes, and the pack path must leave
 * no ref, temporary file or crash report behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChange } from '../../src/worktrees/apply-batch.js';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
import { type CaptureResult, captureChanges } from '../../src/worktrees/capture.js';
import { PACK_THRESHOLD, writeCapturePack } from '../../src/worktrees/capture-pack.js';
import { readWholeStoredBlobs } from '../../src/worktrees/pack-read.js';
import { worktreeGitOptions } from '../../src/worktrees/repository.js';
import { planStaging } from '../../src/worktrees/stage-worktree.js';
import { ensureSessionWorktree, type SessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, setupEnv, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const limits = { maxFiles: 100, maxDiffBytes: 64 * 1024 };
const LATIN1_NAME = Buffer.from('caf\xe9.txt', 'latin1'); // not UTF-8

const initialFiles: Record<string, string> = {
  'del.txt': 'delete me\n',
  'gone/only.txt': 'the whole folder goes\n',
  'tool.sh': 'echo hi\n',
  'to-link.txt': 'becomes a symlink\n',
  a: 'a file that becomes a folder\n',
};
for (let i = 0; i < 12; i++) initialFiles[`d${i % 3}/f${i}.txt`] = `line ${i}\n`;

async function setUp(): Promise<{ repo: string; a: SessionWorktree; b: SessionWorktree }> {
  const repo = await repos.repo(initialFiles);
  await symlink('d0/f0.txt', join(repo, 'was-link'));
  git(repo, 'add', 'was-link');
  git(repo, 'commit', '-q', '-m', 'a symlink');
  const root = await repos.dir();
  const a = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 'a' });
  const b = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 'b' });
  return { repo, a, b };
}

/** The same agent work in any worktree: edits, deletions, new files, type and mode changes. */
async function work(wt: string): Promise<void> {
  for (let i = 0; i < 12; i++) await writeFile(join(wt, `d${i % 3}/f${i}.txt`), `line ${i}\nedited\n`);
  await writeFile(join(wt, 'd1/f4.txt'), 'crlf\r\nkept as is\r\n');
  await chmod(join(wt, 'tool.sh'), 0o755);
  await unlink(join(wt, 'del.txt'));
  await rm(join(wt, 'gone'), { recursive: true });
  await rm(join(wt, 'a'));
  await writeFiles(wt, {
    'a/b.txt': 'a is a folder now\n',
    'new/n0.bin': Buffer.from([0, 1, 2, 255, 0, 10]),
    // An eol attribute would turn this LF into CRLF under `git add`: the blob must keep the raw bytes.
    '.gitattributes': '*.crlf text eol=crlf\n',
    'new.crlf': 'a\nb\n',
    'odd\nname.txt': 'newline in the name\n',
    'q"\\.txt': 'quote and backslash\n',
  });
  await writeFile(Buffer.concat([Buffer.from(`${wt}/`), LATIN1_NAME]), 'latin-1 name\n');
  await unlink(join(wt, 'to-link.txt'));
  await symlink('../outside', join(wt, 'to-link.txt'));
  await symlink('d0/f0.txt', join(wt, 'ln'));
  await unlink(join(wt, 'was-link'));
  await writeFile(join(wt, 'was-link'), 'now a file\n');
}

function capture(repo: string, wt: SessionWorktree, since: string, packThreshold: number) {
  return captureChanges({
    repoPath: repo,
    worktreePath: wt.path,
    sinceCommit: since,
    message: 'm',
    limits,
    packThreshold,
  });
}

function countObjects(repo: string): { loose: number; packs: number } {
  const out = Object.fromEntries(
    git(repo, 'count-objects', '-v')
      .split('\n')
      .map((l) => l.split(': ')),
  );
  return { loose: Number(out.count), packs: Number(out.packs) };
}

/** Whether a blob is stored as a loose object file (rather than only in a pack). */
function isLoose(repo: string, oid: string): boolean {
  return existsSync(join(repo, '.git/objects', oid.slice(0, 2), oid.slice(2)));
}

/** Debris a failed or careless fast-import leaves: crash reports, temporary packs, keep files, refs. */
async function debris(repo: string): Promise<string[]> {
  const gitDir = join(repo, '.git');
  const names = [
    ...(await readdir(gitDir)),
    ...(await readdir(join(gitDir, 'worktrees', 'a'))),
    ...(await readdir(join(gitDir, 'objects/pack'))),
  ];
  const refs = git(repo, 'for-each-ref', '--format=%(refname)').split('\n');
  return [
    ...names.filter((n) => /fast_import_crash|^tmp_|\.keep$/.test(n)),
    ...refs.filter((r) => !/^refs\/heads\/(main|boocoder\/)/.test(r)),
  ];
}

function treeOf(repo: string, commit: string): string {
  return git(repo, 'rev-parse', `${commit}^{tree}`);
}

function byPath(r: CaptureResult) {
  return Object.fromEntries(r.changes.map((c) => [c.filePath, c]));
}

describe('captureChanges, pack path', () => {
  it('records the same blobs, tree and changes as the loose path, in one pack and no loose blob', async () => {
    const { repo, a, b } = await setUp();
    // Small as this capture is, it must land as a pack, as every capture over the threshold does.
    git(repo, 'config', 'fastimport.unpackLimit', '1');
    await work(a.path);
    await work(b.path);
    const before = countObjects(repo);

    const packed = await capture(repo, a, a.headCommit, 1);
    expect(countObjects(repo)).toEqual({ loose: before.loose, packs: before.packs + 1 });
    expect(await debris(repo)).toEqual([]);
    git(repo, 'fsck', '--strict', '--no-progress', '--no-dangling'); // throws on a broken pack or tree
    const c = byPath(packed);
    const edited = c['d0/f0.txt']?.resultOid as string;
    expect(isLoose(repo, edited)).toBe(false);
    // New blobs are stored whole (no delta), so apply reads them without starting git (pack-read.ts).
    const blobs = packed.changes.flatMap((x) =>
      x.resultOid && x.resultOid !== x.baseOid ? [x.resultOid] : [],
    );
    expect([...readWholeStoredBlobs(repo, blobs).keys()].sort()).toEqual([...new Set(blobs)].sort());
    // Raw bytes, as `hash-object --no-filters` reads them: no eol conversion from .gitattributes.
    for (const path of ['new.crlf', 'd1/f4.txt', 'new/n0.bin'])
      expect(c[path]?.resultOid).toBe(git(a.path, 'hash-object', '--no-filters', '--', path));
    expect(c['tool.sh']).toMatchObject({ operation: 'edit', baseMode: '100644', resultMode: '100755' });
    expect(c['to-link.txt']).toMatchObject({ baseMode: '100644', resultMode: '120000', unsafe: true });
    expect(c['was-link']).toMatchObject({ baseMode: '120000', resultMode: '100644' });
    expect(c.ln?.resultOid).toBe(blobOidOf(Buffer.from('d0/f0.txt')));
    expect(c['gone/only.txt']?.operation).toBe('delete');
    const names = execFileSync('git', ['ls-tree', '-r', '-z', '--name-only', packed.commit], {
      cwd: repo,
      env: setupEnv,
    });
    expect(names.includes(Buffer.concat([Buffer.from('\0'), LATIN1_NAME, Buffer.from('\0')]))).toBe(true);
    expect(names.includes(Buffer.from('\0gone/'))).toBe(false);

    // The branch moved to a child of the old head with boocoder's identity; the index matches it.
    expect(git(repo, 'rev-parse', a.branch)).toBe(packed.commit);
    expect(git(repo, 'log', '-1', '--format=%P %an <%ae> %cn <%ce> %s', packed.commit)).toBe(
      `${a.headCommit} boocoder <boocoder@localhost> boocoder <boocoder@localhost> m`,
    );
    expect(git(a.path, 'write-tree')).toBe(treeOf(repo, packed.commit));
    expect(git(a.path, 'status', '--porcelain')).toBe('');

    // A packed blob is applied to the user's checkout like a loose one.
    await applyFileChange(repo, c['d0/f0.txt'] as NonNullable<(typeof c)['d0/f0.txt']>);
    await applyFileChange(repo, c['new/n0.bin'] as NonNullable<(typeof c)['new/n0.bin']>);
    expect(await readFile(join(repo, 'd0/f0.txt'), 'utf8')).toBe('line 0\nedited\n');
    expect(await readFile(join(repo, 'new/n0.bin'))).toEqual(Buffer.from([0, 1, 2, 255, 0, 10]));

    const loose = await capture(repo, b, b.headCommit, Number.POSITIVE_INFINITY);
    expect(countObjects(repo).packs).toBe(before.packs + 1);
    expect(treeOf(repo, loose.commit)).toBe(treeOf(repo, packed.commit));
    expect(loose.changes).toEqual(packed.changes);
    expect(loose.skipped).toEqual(packed.skipped);
    expect(packed.changes).toHaveLength(26);
  });

  it('captures only what came next, the agent own commits included, and refuses past the limits', async () => {
    const { repo, a } = await setUp();
    await work(a.path);
    const first = await capture(repo, a, a.headCommit, 1);
    // The index the pack path wrote lets the next capture see only the next edits.
    await writeFiles(a.path, { 'd0/f0.txt': 'again\n', 'd1/f1.txt': 'again\n' });
    git(a.path, 'commit', '-q', '-am', 'the agent commits');
    await writeFiles(a.path, { 'd2/f2.txt': 'after the commit\n', 'late.txt': 'new\n' });
    const second = await capture(repo, a, first.commit, 1);
    expect(second.changes.map((x) => [x.filePath, x.operation])).toEqual([
      ['d0/f0.txt', 'edit'],
      ['d1/f1.txt', 'edit'],
      ['d2/f2.txt', 'edit'],
      ['late.txt', 'create'],
    ]);
    expect(git(repo, 'rev-parse', `${second.commit}^`)).toBe(git(a.path, 'rev-parse', 'HEAD^'));
    expect(git(a.path, 'status', '--porcelain')).toBe('');

    // Too many files: the pack may be written, but the branch stays and no ref is left behind.
    for (let i = 0; i < 12; i++) await writeFile(join(a.path, `d${i % 3}/f${i}.txt`), `third ${i}\n`);
    const tooMany = captureChanges({
      repoPath: repo,
      worktreePath: a.path,
      sinceCommit: second.commit,
      message: 'm',
      limits: { maxFiles: 5, maxDiffBytes: 1000 },
      packThreshold: 1,
    });
    await expect(tooMany).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_TOO_MANY_FILES'));
    expect(git(repo, 'rev-parse', a.branch)).toBe(second.commit);
    expect(await debris(repo)).toEqual([]);

    // A file over the size limit: refused before fast-import writes anything.
    await writeFile(join(a.path, 'huge.txt'), 'x'.repeat(5000));
    const before = countObjects(repo);
    const tooLarge = captureChanges({
      repoPath: repo,
      worktreePath: a.path,
      sinceCommit: second.commit,
      message: 'm',
      limits: { ...limits, maxFileBytes: 4096 },
      packThreshold: 1,
    });
    await expect(tooLarge).rejects.toSatisfy((e: unknown) => isBoocoderError(e, 'E_DIFF_TOO_LARGE'));
    expect(countObjects(repo)).toEqual(before);
    expect(git(repo, 'rev-parse', a.branch)).toBe(second.commit);
  });

  it('checks each file again as it reads it: gone, swapped for a symlink, grown past the limit', async () => {
    const { repo, a } = await setUp();
    await work(a.path);
    const opts = await worktreeGitOptions(repo, a.path);
    const plan = await planStaging(opts, opts.cwd, { maxNewFiles: 100, maxFileBytes: 4096 });
    // Between the listing and the read, as a still-running agent could do.
    await unlink(join(a.path, 'd0/f0.txt'));
    await unlink(join(a.path, 'd0/f3.txt'));
    await symlink('/etc/passwd', join(a.path, 'd0/f3.txt'));
    const written = await writeCapturePack(opts, plan, 'm', 4096);
    expect(written.plan.removals.map(String)).toContain('d0/f0.txt');
    expect(written.plan.skipped).toEqual([
      { filePath: 'd0/f3.txt', reason: expect.stringMatching(/symlink/) },
    ]);
    expect(git(repo, 'ls-tree', '--name-only', written.commit, 'd0/')).not.toContain('d0/f0.txt');
    // Not read through the link: the file keeps the content HEAD had.
    expect(git(repo, 'rev-parse', `${written.commit}:d0/f3.txt`)).toBe(
      git(repo, 'rev-parse', `${a.headCommit}:d0/f3.txt`),
    );

    const again = await planStaging(opts, opts.cwd, { maxNewFiles: 100, maxFileBytes: 4096 });
    await writeFile(join(a.path, 'd1/f1.txt'), 'x'.repeat(5000));
    await expect(writeCapturePack(opts, again, 'm', 4096)).rejects.toSatisfy((e: unknown) =>
      isBoocoderError(e, 'E_DIFF_TOO_LARGE'),
    );
    expect(git(repo, 'rev-parse', a.branch)).toBe(a.headCommit);
    expect(await debris(repo)).toEqual([]);
  });

  it('falls back to loose objects when the agent staged something itself', async () => {
    const { repo, a } = await setUp();
    git(repo, 'config', 'fastimport.unpackLimit', '1');
    await work(a.path);
    await writeFile(join(a.path, 'staged.txt'), 'staged, then left alone\n');
    git(a.path, 'add', 'staged.txt');
    const before = countObjects(repo);
    const r = await capture(repo, a, a.headCommit, 1);
    // HEAD's tree plus the worktree's changes would miss staged.txt: only the index holds it.
    expect(countObjects(repo).packs).toBe(before.packs);
    expect(byPath(r)['staged.txt']?.operation).toBe('create');
    expect(git(a.path, 'status', '--porcelain')).toBe('');
  });

  it('takes the pack path from the default threshold of regular files on, and stays loose below it', async () => {
    const repo = await repos.repo({ 'a.txt': 'a\n' });
    const root = await repos.dir();
    const wt = await ensureSessionWorktree({ repoPath: repo, worktreesRoot: root, sessionId: 'a' });
    const many = { ...limits, maxFiles: PACK_THRESHOLD + 10 };
    const run = (since: string) =>
      captureChanges({
        repoPath: repo,
        worktreePath: wt.path,
        sinceCommit: since,
        message: 'm',
        limits: many,
      });

    for (let i = 0; i < PACK_THRESHOLD - 1; i++) await writeFile(join(wt.path, `s${i}.txt`), `small ${i}\n`);
    const below = await run(wt.headCommit);
    expect(below.changes).toHaveLength(PACK_THRESHOLD - 1);
    expect(countObjects(repo).packs).toBe(0);

    for (let i = 0; i < PACK_THRESHOLD; i++) await writeFile(join(wt.path, `p${i}.txt`), `packed ${i}\n`);
    const at = await run(below.commit);
    expect(at.changes).toHaveLength(PACK_THRESHOLD);
    expect(countObjects(repo).packs).toBe(1);
    expect(isLoose(repo, at.changes[0]?.resultOid as string)).toBe(false);
    expect(git(wt.path, 'status', '--porcelain')).toBe('');
    expect(await debris(repo)).toEqual([]);
  });
});
