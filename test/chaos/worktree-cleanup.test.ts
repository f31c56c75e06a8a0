/**
 * Worktree cleanup never deletes work: TTL expiry of finished sessions and the orphan sweep, on real
 * git repositories and both databases. Each test asserts on the folders, git's registrations and
 * branches, and the worktrees rows, and that the user's own repository and branches are untouched.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { insertChat, insertSession, type Project, upsertProject } from '../../src/db/projects.js';
import { insertTask } from '../../src/db/task-inserts.js';
import { insertWorktree, type WorktreeRow } from '../../src/db/worktrees.js';
import { silentLogger } from '../../src/log.js';
import { type CleanupReport, runWorktreeCleanup } from '../../src/services/worktree-cleanup.js';
import { ensureSessionWorktree } from '../../src/worktrees/worktrees.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { git, snapshot, tempRepos } from '../helpers/worktrees-temp-repo.js';

const DAY_MS = 86_400_000;
const TTL_MS = 7 * DAY_MS;
const repos = tempRepos();
afterEach(() => repos.cleanup());

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

function branches(repo: string): string[] {
  return git(repo, 'for-each-ref', '--format=%(refname)', 'refs/heads/').split('\n').filter(Boolean);
}

function registeredWorktrees(repo: string): string[] {
  return git(repo, 'worktree', 'list', '--porcelain')
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length));
}

async function rowStatus(db: Db, id: string): Promise<string | undefined> {
  const { rows } = await db.query<{ status: string }>('SELECT status FROM worktrees WHERE id = $1', [id]);
  return rows[0]?.status;
}

interface Fixture {
  repo: string;
  project: Project;
  worktreesRoot: string;
  userBranchesBefore: string[];
  userFilesBefore: Map<string, string>;
  headBefore: string;
}

async function fixture(db: Db): Promise<Fixture> {
  const repo = await repos.repo({ 'a.txt': 'a\n', 'src/b.txt': 'b\n' });
  git(repo, 'branch', 'feature');
  const home = await repos.dir();
  return {
    repo,
    project: await upsertProject(db, repo, 'demo'),
    worktreesRoot: join(home, 'worktrees'),
    userBranchesBefore: branches(repo),
    userFilesBefore: await snapshot(repo),
    headBefore: git(repo, 'rev-parse', 'HEAD'),
  };
}

/** The user's files, branches (other than boocoder's session branches) and HEAD are as they were. */
async function expectUserRepoUntouched(f: Fixture): Promise<void> {
  expect(await snapshot(f.repo)).toEqual(f.userFilesBefore);
  expect(branches(f.repo).filter((b) => !b.startsWith('refs/heads/boocoder/'))).toEqual(f.userBranchesBefore);
  expect(git(f.repo, 'rev-parse', 'HEAD')).toBe(f.headBefore);
  expect(git(f.repo, 'status', '--porcelain')).toBe('');
}

interface SessionWithWorktree {
  sessionId: string;
  taskId: string;
  row: WorktreeRow;
  branchRef: string;
}

/** A session with one task in `state` that ended `endedAgoMs` ago, and its worktree (row and folder). */
async function session(db: Db, f: Fixture, state: string, endedAgoMs: number): Promise<SessionWithWorktree> {
  const s = await insertSession(db, f.project.id, null);
  const chat = await insertChat(db, s.id, null);
  const task = await insertTask(db, {
    projectId: f.project.id,
    sessionId: s.id,
    chatId: chat.id,
    input: 'do it',
    agent: 'fixture',
    model: null,
    parentTaskId: null,
    maxAttempts: 3,
  });
  const running = state === 'running';
  await db.query(
    `UPDATE tasks SET state = $2, ended_at = CASE WHEN $3 THEN NULL ELSE clock_timestamp() - $4::double precision * interval '1 millisecond' END,
            lease_owner = CASE WHEN $3 THEN 'test' END, lease_expires_at = CASE WHEN $3 THEN clock_timestamp() + interval '1 hour' END,
            updated_at = clock_timestamp() - $4::double precision * interval '1 millisecond'
      WHERE id = $1`,
    [task.id, state, running, endedAgoMs],
  );
  const wt = await ensureSessionWorktree({
    repoPath: f.repo,
    worktreesRoot: f.worktreesRoot,
    sessionId: s.id,
  });
  const row = await insertWorktree(db, {
    sessionId: s.id,
    projectId: f.project.id,
    path: wt.path,
    branch: wt.branch,
    baseCommit: wt.baseCommit,
    headCommit: wt.headCommit,
  });
  return { sessionId: s.id, taskId: task.id, row, branchRef: `refs/heads/${wt.branch}` };
}

async function addChange(db: Db, s: SessionWithWorktree, status: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO pending_changes (session_id, task_id, worktree_id, file_path, operation, diff, status)
     VALUES ($1, $2, $3, 'a.txt', 'edit', '', $4) RETURNING id`,
    [s.sessionId, s.taskId, s.row.id, status],
  );
  return (rows[0] as { id: string }).id;
}

function cleanup(db: Db, f: Fixture): Promise<CleanupReport> {
  return runWorktreeCleanup({ db, logger: silentLogger, worktreesRoot: f.worktreesRoot, ttlMs: TTL_MS });
}

describeEachDatabase('worktree cleanup', (ctx) => {
  it('removes and archives the worktree of a session finished longer than the TTL ago; the branch stays while a change is applied', async () => {
    const f = await fixture(ctx.db);
    const old = await session(ctx.db, f, 'completed', TTL_MS + DAY_MS);
    const recent = await session(ctx.db, f, 'failed', DAY_MS);
    const applied = await session(ctx.db, f, 'cancelled', TTL_MS + DAY_MS);
    await addChange(ctx.db, applied, 'applied');
    await addChange(ctx.db, applied, 'rejected');

    const report = await cleanup(ctx.db, f);

    expect(report.removed.sort()).toEqual([old.row.path, applied.row.path].sort());
    for (const gone of [old, applied]) {
      expect(await exists(gone.row.path)).toBe(false);
      expect(await rowStatus(ctx.db, gone.row.id)).toBe('archived');
      expect(registeredWorktrees(f.repo)).not.toContain(gone.row.path);
    }
    expect(branches(f.repo)).not.toContain(old.branchRef);
    // Reverting the applied change needs its base blob, which may exist only on the branch.
    expect(branches(f.repo)).toContain(applied.branchRef);
    expect(await exists(join(recent.row.path, 'a.txt'))).toBe(true);
    expect(await rowStatus(ctx.db, recent.row.id)).toBe('active');
    expect(branches(f.repo)).toContain(recent.branchRef);
    await expectUserRepoUntouched(f);
  });

  it('keeps the worktree and branch while a change is pending, and removes them once it is rejected', async () => {
    const f = await fixture(ctx.db);
    const s = await session(ctx.db, f, 'completed', TTL_MS + DAY_MS);
    const change = await addChange(ctx.db, s, 'pending');

    const report = await cleanup(ctx.db, f);
    expect(report.removed).toEqual([]);
    expect(report.kept.map((k) => k.path)).toContain(s.row.path);
    expect(await exists(join(s.row.path, 'a.txt'))).toBe(true);
    expect(branches(f.repo)).toContain(s.branchRef);
    expect(await rowStatus(ctx.db, s.row.id)).toBe('active');

    await ctx.db.query(`UPDATE pending_changes SET status = 'rejected' WHERE id = $1`, [change]);
    expect((await cleanup(ctx.db, f)).removed).toEqual([s.row.path]);
    expect(branches(f.repo)).not.toContain(s.branchRef);
    await expectUserRepoUntouched(f);
  });

  it('keeps a worktree with uncaptured edits, a locked one, and sessions with an unfinished task', async () => {
    const f = await fixture(ctx.db);
    const dirty = await session(ctx.db, f, 'completed', TTL_MS + DAY_MS);
    await writeFile(join(dirty.row.path, 'notes.txt'), 'unsaved work\n');
    await writeFile(join(dirty.row.path, 'a.txt'), 'edited\n');
    const locked = await session(ctx.db, f, 'completed', TTL_MS + DAY_MS);
    git(f.repo, 'worktree', 'lock', '--reason', 'kept by the user', locked.row.path);
    const open = await Promise.all(
      ['pending', 'running', 'blocked'].map((state) => session(ctx.db, f, state, TTL_MS + DAY_MS)),
    );

    const report = await cleanup(ctx.db, f);

    expect(report.removed).toEqual([]);
    expect(report.kept.find((k) => k.path === dirty.row.path)?.reason).toMatch(/uncaptured/);
    expect(report.kept.find((k) => k.path === locked.row.path)?.reason).toMatch(/locked/);
    expect(await exists(join(dirty.row.path, 'notes.txt'))).toBe(true);
    for (const s of [dirty, locked, ...open]) {
      expect(await rowStatus(ctx.db, s.row.id)).toBe('active');
      expect(branches(f.repo)).toContain(s.branchRef);
      expect(registeredWorktrees(f.repo)).toContain(s.row.path);
    }
    await expectUserRepoUntouched(f);
  });

  it('removes orphan folders only when they hold no work, and leaves foreign folders alone', async () => {
    const f = await fixture(ctx.db);
    // Orphans: their rows were archived, their sessions are finished (recently: the TTL plays no part).
    const clean = await session(ctx.db, f, 'completed', DAY_MS);
    const dirty = await session(ctx.db, f, 'completed', DAY_MS);
    const pending = await session(ctx.db, f, 'completed', DAY_MS);
    await addChange(ctx.db, pending, 'pending');
    await writeFile(join(dirty.row.path, 'a.txt'), 'unsaved\n');
    // A claimed task makes its folder before its row: a folder with no row but an open task is in use.
    const queued = await session(ctx.db, f, 'pending', DAY_MS);
    for (const s of [clean, dirty, pending, queued])
      await ctx.db.query(`UPDATE worktrees SET status = 'archived' WHERE id = $1`, [s.row.id]);
    // Debris of a failed `worktree add` for a known session, and folders boocoder did not make.
    const debrisSession = await session(ctx.db, f, 'completed', DAY_MS);
    await ctx.db.query(`UPDATE worktrees SET status = 'archived' WHERE id = $1`, [debrisSession.row.id]);
    await rm(debrisSession.row.path, { recursive: true, force: true });
    git(f.repo, 'worktree', 'prune');
    await mkdir(join(debrisSession.row.path, 'half'), { recursive: true });
    await writeFile(join(debrisSession.row.path, 'half', 'x.txt'), 'x');
    const foreignName = join(f.worktreesRoot, 'not-a-session');
    await mkdir(foreignName);
    await writeFile(join(foreignName, 'keep.txt'), 'mine');
    const foreignRepo = join(f.worktreesRoot, randomUUID());
    await mkdir(foreignRepo);
    git(foreignRepo, 'init', '-q');

    const report = await cleanup(ctx.db, f);

    expect(report.removed.sort()).toEqual([clean.row.path, debrisSession.row.path].sort());
    expect(await exists(clean.row.path)).toBe(false);
    expect(branches(f.repo)).not.toContain(clean.branchRef);
    expect(registeredWorktrees(f.repo)).not.toContain(clean.row.path);
    expect(await exists(debrisSession.row.path)).toBe(false);
    for (const kept of [dirty, pending, queued]) {
      expect(await exists(join(kept.row.path, 'a.txt'))).toBe(true);
      expect(branches(f.repo)).toContain(kept.branchRef);
      expect(registeredWorktrees(f.repo)).toContain(kept.row.path);
    }
    expect(await exists(join(foreignName, 'keep.txt'))).toBe(true);
    expect(await exists(join(foreignRepo, '.git', 'HEAD'))).toBe(true);
    await expectUserRepoUntouched(f);
  });

  it("archives the row of a deleted folder and prunes git's stale registration, keeping the branch", async () => {
    const f = await fixture(ctx.db);
    const s = await session(ctx.db, f, 'completed', DAY_MS);
    await rm(s.row.path, { recursive: true, force: true });
    expect(registeredWorktrees(f.repo)).toContain(s.row.path);

    const report = await cleanup(ctx.db, f);

    expect(report.archivedMissing).toEqual([s.row.path]);
    expect(await rowStatus(ctx.db, s.row.id)).toBe('archived');
    expect(registeredWorktrees(f.repo)).not.toContain(s.row.path);
    expect(branches(f.repo)).toContain(s.branchRef);
    // The session can start again: a new worktree is made from the kept branch.
    const again = await ensureSessionWorktree({
      repoPath: f.repo,
      worktreesRoot: f.worktreesRoot,
      sessionId: s.sessionId,
    });
    expect(again.path).toBe(s.row.path);
    await expectUserRepoUntouched(f);
  });
});
