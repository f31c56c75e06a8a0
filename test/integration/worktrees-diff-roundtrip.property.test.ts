/**
 * Capture, apply and revert as properties over generated agent work on real repositories: whatever
 * files an agent creates, edits, deletes or chmods (binary, CRLF, empty, diff-looking content, odd
 * names), each captured change's diff is git's own diff of that file, applying every change
 * reproduces the agent's files byte for byte with their modes, and reverting restores the user's.
 * A symlink or a control-character name mixed in is flagged unsafe and refused.
 * The pure diff and path properties are in test/unit/worktrees-diff-policy.property.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChange, revertFileChange } from '../../src/worktrees/apply-batch.js';
import { type CapturedChange, captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { git, setupEnv, snapshot, tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

async function rejectsWith(action: Promise<unknown>, code: string): Promise<void> {
  await expect(action).rejects.toSatisfy((e: unknown) => isBoocoderError(e) && e.code === code);
}

const segment = fc.stringMatching(/^[A-Za-z0-9_é名][A-Za-z0-9 ._é名-]{0,7}$/);
const safePath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));

type Role = 'keep' | 'edit' | 'delete' | 'chmod' | 'create';
type FileSpec = { bytes: Buffer; exec: boolean };
type PlannedFile = { path: string; role: Role; base: FileSpec; result: FileSpec };

const content = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc
    .tuple(fc.array(fc.stringMatching(/^[ -~]{0,20}$/), { maxLength: 6 }), fc.constantFrom('\n', '\r\n', ''))
    .map(([lines, eol]) => Buffer.from(lines.join(eol || '\n') + eol)),
  fc.constant(Buffer.from('diff --git a/x b/x\n+not a header\n')),
);
const fileSpec = fc.record({ bytes: content, exec: fc.boolean() });

/** A file and a folder cannot share a name: drop `a` when `a/b` is also planned. */
function withoutFolderClashes(files: PlannedFile[]): PlannedFile[] {
  return files.filter((f) => !files.some((g) => g.path.startsWith(`${f.path}/`)));
}

const scenario = fc.record({
  files: fc
    .uniqueArray(
      fc.record({
        path: safePath,
        role: fc.constantFrom<Role>('keep', 'edit', 'delete', 'chmod', 'create'),
        base: fileSpec,
        result: fileSpec,
      }),
      { minLength: 1, maxLength: 6, selector: (f) => f.path },
    )
    .map(withoutFolderClashes),
  // Changes capture must flag and apply must refuse, mixed in with the good ones.
  symlink: fc.boolean(),
  controlCharName: fc.boolean(),
});

/** Every file under root (the top-level `.git` aside): its bytes, and whether it is executable. */
async function tree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [rel, bytes] of await snapshot(root)) {
    const st = await lstat(join(root, rel));
    out.set(rel, st.isSymbolicLink() ? bytes : `${st.mode & 0o100 ? 'x' : '-'}${bytes}`);
  }
  return out;
}

async function writeSpec(root: string, path: string, spec: FileSpec): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), spec.bytes);
  await chmod(join(root, path), spec.exec ? 0o755 : 0o644);
}

async function commitBase(repo: string, files: PlannedFile[]): Promise<void> {
  git(repo, 'init', '-q', '-b', 'main');
  await writeFile(join(repo, 'README.md'), '# base\n');
  for (const f of files) if (f.role !== 'create') await writeSpec(repo, f.path, f.base);
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'base');
}

/** Does to the worktree what the plan says; returns the paths that really changed. */
async function actAsAgent(wt: string, files: PlannedFile[]): Promise<string[]> {
  const changed: string[] = [];
  for (const f of files) {
    const abs = join(wt, f.path);
    if (f.role === 'edit') await writeFile(abs, f.result.bytes);
    if (f.role === 'delete') await unlink(abs);
    if (f.role === 'chmod') await chmod(abs, f.base.exec ? 0o644 : 0o755);
    if (f.role === 'create') await writeSpec(wt, f.path, f.result);
    if (f.role !== 'keep' && !(f.role === 'edit' && f.result.bytes.equals(f.base.bytes)))
      changed.push(f.path);
  }
  return changed;
}

const DIFF_FLAGS = ['-p', '--no-color', '--src-prefix=a/', '--dst-prefix=b/', '-r', '--no-renames'];

function gitDiff(repo: string, from: string, to: string, path?: string): Buffer {
  const args = ['--literal-pathspecs', 'diff-tree', ...DIFF_FLAGS, from, to, ...(path ? ['--', path] : [])];
  return execFileSync('git', args, { cwd: repo, env: setupEnv, maxBuffer: 1 << 24 });
}

/** Each change's diff is exactly git's own diff of that one file, and together they are the whole diff. */
function expectDiffsMatchGit(repo: string, from: string, to: string, changes: CapturedChange[]): void {
  expect(changes.map((c) => c.diff).join('')).toBe(gitDiff(repo, from, to).toString('utf8'));
  for (const c of changes) {
    const own = gitDiff(repo, from, to, c.filePath);
    expect(c.diff).toBe(own.toString('utf8'));
    expect(c.diffBytes).toBe(own.length);
  }
}

describe('capture, apply and revert on generated agent work', () => {
  it('apply reproduces the agent files byte for byte, revert restores the user files; unsafe changes are refused', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ files, symlink: withSymlink, controlCharName }) => {
        const root = await repos.dir();
        try {
          const repo = join(root, 'repo');
          await mkdir(repo);
          await commitBase(repo, files);
          const wt = await ensureSessionWorktree({
            repoPath: repo,
            worktreesRoot: join(root, 'wts'),
            sessionId: 's',
          });
          const expected = await actAsAgent(wt.path, files);
          const unsafe = new Map<string, string>();
          if (withSymlink) {
            await symlink('../../outside', join(wt.path, 'evil-link'));
            unsafe.set('evil-link', 'E_UNSAFE_CHANGE');
          }
          if (controlCharName) {
            await writeFile(join(wt.path, 'ctl\u0001name'), 'x\n');
            unsafe.set('ctl\u0001name', 'E_PATH_ESCAPE');
          }
          const capture = await captureChanges({
            repoPath: repo,
            worktreePath: wt.path,
            sinceCommit: wt.headCommit,
            message: 'agent',
            limits: { maxFiles: 100, maxDiffBytes: 1 << 20 },
          });
          const changes = capture.changes;
          const pathsOf = (list: CapturedChange[]) => list.map((c) => c.filePath).sort();
          expect(pathsOf(changes)).toEqual([...expected, ...unsafe.keys()].sort());
          expect(pathsOf(changes.filter((c) => c.unsafe))).toEqual([...unsafe.keys()].sort());
          expectDiffsMatchGit(repo, wt.headCommit, capture.commit, changes);

          const userFiles = await tree(repo);
          for (const c of changes) {
            const code = unsafe.get(c.filePath);
            if (code) await rejectsWith(applyFileChange(repo, c), code);
            else await applyFileChange(repo, c);
          }
          const agentFiles = await tree(wt.path);
          for (const path of unsafe.keys()) agentFiles.delete(path);
          expect(await tree(repo)).toEqual(agentFiles);

          for (const c of [...changes].reverse()) if (!c.unsafe) await revertFileChange(repo, c);
          expect(await tree(repo)).toEqual(userFiles);
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      }),
      { numRuns: 6 },
    );
  });
});
