/**
 * Hostile agent output, driven through the real MCP tools on PGlite and PostgreSQL: an agent that
 * creates more files than the capture limit, and one that writes a file whose diff is larger than
 * the per-file diff limit. Too many files fails the task with E_TOO_MANY_FILES and records nothing
 * (no pending change, the session branch unmoved, the user's checkout untouched, the next task in the
 * session starting clean); an oversized diff is still one pending change, its stored diff a small
 * placeholder that says so and its real size in diff_bytes, and applying it writes the exact bytes.
 *
 * The limits are the ones src/dispatcher/run-task.ts passes to captureChanges (5,000 files, 1 MiB of
 * diff per file): they are not settings yet, so the agent here really writes 5,001 files. The limits
 * it does not pass (the size of one file, the diffs of one capture together) are checked on
 * captureChanges itself, with small values.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
import { captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { git, snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const MAX_FILES = 5000;
const MAX_DIFF_BYTES = 1024 * 1024;

interface TaskResult {
  task_id: string;
  session_id: string;
  state: string;
  error_code: string | null;
  error: string | null;
  pending_changes: number;
}

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  diff: string;
  diff_bytes: number;
  diff_truncated: boolean;
  diff_uri: string;
}

/** What the fixture's `write-big <path> <bytes>` writes. */
function bigFileBytes(bytes: number): string {
  return `${'x'.repeat(99)}\n`.repeat(Math.ceil(bytes / 100)).slice(0, bytes);
}

describeEachDatabase('limits on what an agent leaves behind', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# limits\n' });
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const runTask = async (input: string, sessionId?: string): Promise<TaskResult> => {
    const queued = await callOk<{ task_id: string; session_id: string }>(client, 'new_task', {
      project: repo,
      input,
      ...(sessionId ? { session_id: sessionId } : {}),
    });
    const done = await callOk<TaskResult>(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    return { ...done, task_id: queued.task_id, session_id: queued.session_id };
  };

  const changesOf = async (taskId: string): Promise<Change[]> =>
    (await callOk<{ changes: Change[] }>(client, 'list_pending_changes', { task_id: taskId })).changes;

  it('more files than the limit: the task fails with E_TOO_MANY_FILES and nothing is recorded', async () => {
    const before = await snapshot(repo);
    const head = git(repo, 'rev-parse', 'HEAD');

    const flood = await runTask(`write-many gen ${MAX_FILES + 1} generated`);
    expect(flood).toMatchObject({ state: 'failed', error_code: 'E_TOO_MANY_FILES', pending_changes: 0 });
    expect(flood.error).toMatch(new RegExp(`${MAX_FILES + 1} files, over the limit of ${MAX_FILES}`));
    expect(await changesOf(flood.task_id)).toEqual([]);
    // Not half-written: the session branch did not move, and the user's checkout is untouched.
    expect(git(repo, 'rev-parse', `refs/heads/boocoder/session-${flood.session_id}`)).toBe(head);
    expect(await snapshot(repo)).toEqual(before);

    // The next task in the session starts from the last recorded state: none of the flood is in it.
    const next = await runTask('write ok.txt fine', flood.session_id);
    expect(next).toMatchObject({ state: 'completed', pending_changes: 1 });
    expect((await changesOf(next.task_id)).map((c) => [c.file_path, c.operation])).toEqual([
      ['ok.txt', 'create'],
    ]);
  });

  it('a diff over the per-file limit: one change with a placeholder diff, and apply writes the exact file', async () => {
    const bytes = 2 * MAX_DIFF_BYTES;
    const done = await runTask(`write-big data/big.txt ${bytes}\nwrite small.txt small`);
    expect(done).toMatchObject({ state: 'completed', pending_changes: 2 });
    const changes = await changesOf(done.task_id);
    const big = changes.find((c) => c.file_path === 'data/big.txt');
    const small = changes.find((c) => c.file_path === 'small.txt');

    expect(big?.operation).toBe('create');
    expect(big?.diff_bytes).toBeGreaterThan(bytes);
    expect(big?.diff).toMatch(
      /^diff --git a\/data\/big.txt b\/data\/big.txt\n# boocoder: this file's diff is/,
    );
    expect(big?.diff).toContain(`over the ${MAX_DIFF_BYTES}-byte limit, so it was not stored`);
    expect(Buffer.byteLength(big?.diff ?? '')).toBeLessThan(1024);
    const full = await client.readResource({ uri: big?.diff_uri as string });
    expect(JSON.stringify(full.contents[0])).toContain('so it was not stored');
    // The limit is per file: the other file's diff is stored whole.
    expect(small?.diff).toContain('+small');
    expect(small?.diff_bytes).toBe(Buffer.byteLength(small?.diff ?? ''));

    await callOk(client, 'apply_change', { change_id: big?.change_id, action: 'apply' });
    expect((await readFile(join(repo, 'data/big.txt'))).equals(Buffer.from(bigFileBytes(bytes)))).toBe(true);
    await callOk(client, 'apply_change', { change_id: big?.change_id, action: 'revert' });
    await expect(readFile(join(repo, 'data/big.txt'))).rejects.toThrow(/ENOENT/);
  });
});

describe('capture limits the dispatcher does not set', () => {
  const repos = tempRepos();
  afterAll(() => repos.cleanup());

  const session = async () => {
    const repo = await repos.repo({ 'README.md': '# r\n' });
    const wt = await ensureSessionWorktree({
      repoPath: repo,
      worktreesRoot: await repos.dir(),
      sessionId: 's',
    });
    return { repo, wt };
  };

  it('a file over the size limit fails the capture before any of it enters the object store', async () => {
    const { repo, wt } = await session();
    const huge = Buffer.alloc(4096, 'y');
    await writeFile(join(wt.path, 'huge.bin'), huge);
    await writeFile(join(wt.path, 'fine.txt'), 'fine\n');
    const call = captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits: { maxFiles: 10, maxDiffBytes: 1 << 20, maxFileBytes: 1000 },
    });
    await expect(call).rejects.toSatisfy(
      (e: unknown) => isBoocoderError(e, 'E_DIFF_TOO_LARGE') && /"huge.bin", 4096 bytes/.test(e.message),
    );
    expect(git(repo, 'rev-parse', wt.branch)).toBe(wt.headCommit);
    for (const bytes of [huge, Buffer.from('fine\n')]) {
      const oid = blobOidOf(bytes);
      expect(() => execFileSync('git', ['cat-file', '-e', oid], { cwd: repo, stdio: 'ignore' })).toThrow();
    }
  });

  it('diffs past the total for one capture are placeholders; every file is still a change', async () => {
    const { repo, wt } = await session();
    const text = (n: number) => `${'line of text\n'.repeat(40)}${n}\n`;
    for (let i = 0; i < 4; i++) await writeFile(join(wt.path, `f${i}.txt`), text(i));
    const r = await captureChanges({
      repoPath: repo,
      worktreePath: wt.path,
      sinceCommit: wt.headCommit,
      message: 'm',
      limits: { maxFiles: 10, maxDiffBytes: 1000, maxTotalDiffBytes: 1000 },
    });
    expect(r.changes.map((c) => c.filePath)).toEqual(['f0.txt', 'f1.txt', 'f2.txt', 'f3.txt']);
    const [first, ...rest] = r.changes;
    expect(first?.diff).toContain(`+${text(0).split('\n')[0]}`);
    expect(first?.diffBytes).toBe(Buffer.byteLength(first?.diff ?? ''));
    for (const c of rest) {
      expect(c.diff).toContain("the task's diffs together passed the 1000-byte limit, so it was not stored");
      expect(c.diffBytes).toBeGreaterThan(500);
      expect(c.resultOid).toBe(blobOidOf(Buffer.from(text(Number(c.filePath[1])))));
    }
  });
});
