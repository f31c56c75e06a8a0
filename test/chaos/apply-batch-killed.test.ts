/**
 * A `kill -9` in the middle of a batch apply (issue 10 §2): the temp files the killed batch was
 * writing through must not stay in the user's repository. They are swept by the retried batch and
 * at start-up, from the journal the batch wrote before its first temp file.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { applyFileChanges } from '../../src/worktrees/apply-batch.js';
import { sweepApplyJournals } from '../../src/worktrees/apply-journal.js';
import { type CapturedChange, captureChanges } from '../../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { startTsxScript, waitFor, waitForExit, waitForReady } from '../helpers/chaos-processes.js';
import { git, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/apply-batch-process.ts', import.meta.url));
const FOLDERS = 10;
const FILES = 300;
const SIZE = 200 * 1024;

const repos = tempRepos();
afterEach(() => repos.cleanup());

const content = (i: number, tag: string) => Buffer.alloc(SIZE, `${tag} ${i} `);
const pathOf = (i: number) => `d${i % FOLDERS}/f${i}.txt`;

/** A repository of 300 files of 200 KB and an agent's edit of each. */
async function bigBatch(): Promise<{ repo: string; changes: CapturedChange[] }> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) files[pathOf(i)] = content(i, 'before');
  const repo = await repos.repo(files);
  const wt = await ensureSessionWorktree({
    repoPath: repo,
    worktreesRoot: await repos.dir(),
    sessionId: 's',
  });
  const edits: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) edits[pathOf(i)] = content(i, 'after');
  await writeFiles(wt.path, edits);
  const r = await captureChanges({
    repoPath: repo,
    worktreePath: wt.path,
    sinceCommit: wt.headCommit,
    message: 'm',
    limits: { maxFiles: 1000, maxDiffBytes: 1024 },
  });
  return { repo, changes: r.changes };
}

async function tempFilesIn(repo: string): Promise<string[]> {
  const found: string[] = [];
  for (let d = 0; d < FOLDERS; d++) {
    for (const name of await readdir(join(repo, `d${d}`))) {
      if (name.startsWith('.boocoder-')) found.push(`d${d}/${name}`);
    }
  }
  return found;
}

/** Starts the batch in its own process and kills it with -9 once a temp file is in the repository. */
async function killMidBatch(repo: string, journal: string, changes: CapturedChange[]): Promise<string[]> {
  const file = join(await repos.dir(), 'changes.json');
  await writeFile(file, JSON.stringify(changes));
  const p = startTsxScript(FIXTURE, {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    APPLY_REPO: repo,
    APPLY_JOURNAL: journal,
    APPLY_CHANGES: file,
  });
  await waitForReady(p);
  const seen = await waitFor('a temp file of the batch', async () => {
    if (p.stdout().includes('done\n')) throw new Error('the batch finished before it could be killed');
    const tmp = await tempFilesIn(repo);
    return tmp.length > 0 ? tmp : undefined;
  });
  p.child.kill('SIGKILL');
  expect((await waitForExit(p, 30_000)).signal).toBe('SIGKILL');
  return seen;
}

async function expectAllApplied(repo: string): Promise<void> {
  for (let i = 0; i < FILES; i += 37)
    expect(await readFile(join(repo, pathOf(i)))).toEqual(content(i, 'after'));
  // Nothing untracked: only the 300 edits show.
  expect(git(repo, 'status', '--porcelain', '--untracked-files=all').split('\n')).toHaveLength(FILES);
}

describe('a batch apply killed with -9 half-way', () => {
  it('leaves no temp file once the batch is retried', async () => {
    const { repo, changes } = await bigBatch();
    const journal = join(await repos.dir(), 'apply-journal');
    await killMidBatch(repo, journal, changes);
    // The crash did leave temp files (what this test guards against): the retry sweeps them.
    expect((await tempFilesIn(repo)).length).toBeGreaterThan(0);
    await applyFileChanges(repo, changes, { journalDir: journal });
    expect(await tempFilesIn(repo)).toEqual([]);
    await expectAllApplied(repo);
    expect(await readdir(journal)).toEqual([]);
  });

  it('leaves no temp file after the start-up sweep, and the journal is gone', async () => {
    const { repo, changes } = await bigBatch();
    const journal = join(await repos.dir(), 'apply-journal');
    await killMidBatch(repo, journal, changes);
    const left = await tempFilesIn(repo);
    expect(left.length).toBeGreaterThan(0);
    expect(await sweepApplyJournals(journal)).toBe(left.length);
    expect(await tempFilesIn(repo)).toEqual([]);
    expect(await readdir(journal)).toEqual([]);
  });
});
