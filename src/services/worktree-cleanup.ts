/**
 * Worktree cleanup: the worktree of a session finished longer than a TTL ago is removed, and at
 * start-up an orphan sweep removes worktree folders no row accounts for and archives rows whose
 * folder is gone. What is never removed: a worktree or branch whose session still has a pending
 * change (apply reads the change's blobs through that branch's commits), a worktree with
 * uncaptured edits, a session with a pending, running or blocked task, and anything that is not a
 * session folder under this host's `${home}/worktrees/`.
 */
import { mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../db/db.js';
import {
  archiveFinishedWorktree,
  archiveMissingWorktree,
  describeWorktreeFolder,
  listActiveWorktreesUnder,
  listExpiredWorktrees,
} from '../db/worktrees.js';
import type { Logger } from '../log.js';
import { findWorktreeAdminDir, resolveRepository } from '../worktrees/repository.js';
import {
  exists,
  isWorktreeDirty,
  pruneWorktrees,
  removeSessionWorktree,
  sessionBranchName,
} from '../worktrees/worktrees.js';

export interface WorktreeCleanupOptions {
  db: Db;
  logger: Logger;
  /** `${home}/worktrees`: the only folder cleanup ever removes anything from */
  worktreesRoot: string;
  /** a finished session's worktree is removed this long after its last task ended */
  ttlMs: number;
  /** Only this machine's worktrees are touched (project-machine.ts); unset: every row under the folder. */
  machineId?: string;
  /** checked between worktrees, so that shutdown does not wait for a whole sweep */
  isStopped?: () => boolean;
}

export interface CleanupReport {
  /** worktree paths removed (TTL expired or orphan folders) */
  removed: string[];
  /** rows archived because their folder was gone */
  archivedMissing: string[];
  /** paths left in place, with why */
  kept: { path: string; reason: string }[];
}

/** Sessions are UUIDs: any other folder name under the root is not boocoder's to judge. */
const SESSION_FOLDER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Rows examined per pass: bounds one pass; anything beyond is picked up by the next. */
const BATCH = 5000;

/** The worktrees root as stored in rows (realpath, as ensureSessionWorktree stores it), with a trailing `/`. */
async function rootPrefix(worktreesRoot: string): Promise<string> {
  await mkdir(worktreesRoot, { recursive: true });
  return `${await realpath(worktreesRoot)}/`;
}

/**
 * Why a worktree registered in the repository at `repoRoot` must stay, if it must: uncaptured
 * edits, or a `git worktree lock` (someone asked git to keep it). Undefined for a folder that is
 * absent or not registered there (debris).
 */
async function workHeldBy(repoRoot: string, path: string): Promise<string | undefined> {
  const repo = await resolveRepository(repoRoot);
  if (!(await exists(path))) return undefined;
  const admin = await findWorktreeAdminDir(repo.commonDir, await realpath(path));
  if (!admin) return undefined;
  if (await exists(join(admin, 'locked'))) return 'the worktree is locked (git worktree lock)';
  if (await isWorktreeDirty(repo.rootPath, path)) return 'the worktree has uncaptured edits';
  return undefined;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Removes the worktrees (and branches) of sessions finished more than the TTL ago. */
export async function removeExpiredWorktrees(
  o: WorktreeCleanupOptions,
  report: CleanupReport,
): Promise<void> {
  const prefix = await rootPrefix(o.worktreesRoot);
  for (const w of await listExpiredWorktrees(o.db, prefix, o.ttlMs, BATCH, o.machineId)) {
    if (o.isStopped?.()) return;
    const keep = (reason: string) => {
      report.kept.push({ path: w.path, reason });
      o.logger.info('worktree kept', { worktree: w.id, session: w.sessionId, reason });
    };
    if (w.pendingChanges > 0) {
      keep(`${w.pendingChanges} change(s) still pending review`);
      continue;
    }
    if (!w.branch) {
      keep('the row names no branch');
      continue;
    }
    try {
      const held = await workHeldBy(w.rootPath, w.path);
      if (held) {
        keep(held);
        continue;
      }
      // Archive first, re-checking tasks and changes in one statement: a task queued since the
      // listing keeps the worktree. removeSessionWorktree re-checks dirtiness before deleting.
      if (!(await archiveFinishedWorktree(o.db, w.id))) {
        keep('the session became active again');
        continue;
      }
      // An applied change can still be reverted, and its base blob may exist only in the branch's
      // capture commits: the folder goes, the branch stays while any change is applied.
      await removeSessionWorktree({
        repoPath: w.rootPath,
        path: w.path,
        branch: w.branch,
        hasUnappliedChanges: false,
        keepBranch: w.appliedChanges > 0,
      });
      report.removed.push(w.path);
      o.logger.info('worktree removed after its TTL', { worktree: w.id, session: w.sessionId });
    } catch (err) {
      // The row may already be archived: the orphan sweep then re-examines the folder, with the same guards.
      report.kept.push({ path: w.path, reason: `removal failed: ${reasonOf(err)}` });
      o.logger.warn('worktree removal failed', { worktree: w.id, error: reasonOf(err) });
    }
  }
}

/** Rows whose folder is gone: the repository's stale registration is pruned and the row archived. */
async function archiveMissingFolders(o: WorktreeCleanupOptions, prefix: string, report: CleanupReport) {
  for (const w of await listActiveWorktreesUnder(o.db, prefix, o.machineId)) {
    if (o.isStopped?.()) return;
    if (await exists(w.path)) continue;
    try {
      if (w.rootPath) await pruneWorktrees(w.rootPath);
      // The branch stays: it holds the session's commits, and a new task re-creates the worktree from it.
      if (await archiveMissingWorktree(o.db, w.id)) {
        report.archivedMissing.push(w.path);
        o.logger.info('worktree row archived: its folder is gone', { worktree: w.id, session: w.sessionId });
      }
    } catch (err) {
      report.kept.push({ path: w.path, reason: `cannot prune: ${reasonOf(err)}` });
      o.logger.warn('stale worktree registration not pruned', { worktree: w.id, error: reasonOf(err) });
    }
  }
}

/** A session folder no active row accounts for. */
async function examineOrphanFolder(
  o: WorktreeCleanupOptions,
  path: string,
  sessionId: string,
): Promise<string | undefined> {
  const owner = await describeWorktreeFolder(o.db, sessionId, path);
  // A task claimed for this session creates the folder before its row: not an orphan.
  if (owner.hasActiveRow || owner.hasOpenTasks) return 'in use';
  if (owner.hasPendingChanges) return 'its session has changes pending review';
  if (!owner.rootPath) {
    // Without the repository nothing can tell whether the folder holds work: only a folder with no
    // git data at all (debris of a failed `worktree add`) may go.
    if (await exists(join(path, '.git'))) return 'its repository is unknown';
    await rm(path, { recursive: true, force: true });
    return undefined;
  }
  const held = await workHeldBy(owner.rootPath, path);
  if (held) return held;
  // Unregistered folders go through clearDebris, which refuses another repository's checkout.
  await removeSessionWorktree({
    repoPath: owner.rootPath,
    path,
    branch: sessionBranchName(sessionId),
    hasUnappliedChanges: false,
  });
  return undefined;
}

/**
 * Start-up sweep: archives rows whose folder is gone (pruning the stale registration), and removes
 * session folders under the root that no active row accounts for, unless they hold work.
 */
export async function sweepOrphanWorktrees(o: WorktreeCleanupOptions, report: CleanupReport): Promise<void> {
  const prefix = await rootPrefix(o.worktreesRoot);
  await archiveMissingFolders(o, prefix, report);
  for (const entry of await readdir(prefix, { withFileTypes: true })) {
    if (o.isStopped?.()) return;
    // Symlinks and files are never followed or removed: only folders boocoder could have made.
    if (!entry.isDirectory() || !SESSION_FOLDER.test(entry.name)) continue;
    const path = join(prefix, entry.name);
    try {
      const kept = await examineOrphanFolder(o, path, entry.name);
      if (kept === 'in use') continue;
      if (kept) {
        report.kept.push({ path, reason: kept });
        o.logger.info('orphan worktree kept', { session: entry.name, reason: kept });
      } else {
        report.removed.push(path);
        o.logger.info('orphan worktree removed', { session: entry.name });
      }
    } catch (err) {
      report.kept.push({ path, reason: `removal failed: ${reasonOf(err)}` });
      o.logger.warn('orphan worktree not removed', { session: entry.name, error: reasonOf(err) });
    }
  }
}

/** One full pass: TTL expiry, then the orphan sweep (which also picks up what a failed removal left). */
export async function runWorktreeCleanup(o: WorktreeCleanupOptions): Promise<CleanupReport> {
  const report: CleanupReport = { removed: [], archivedMissing: [], kept: [] };
  await removeExpiredWorktrees(o, report);
  await sweepOrphanWorktrees(o, report);
  return report;
}

export interface WorktreeCleanupSchedule {
  /** Stops the timer and waits for a pass in progress (which stops at its next worktree). */
  stop(): Promise<void>;
}

/** Runs a pass now and then every `intervalMs`; a failing pass is logged, never thrown. */
export function scheduleWorktreeCleanup(
  o: Omit<WorktreeCleanupOptions, 'isStopped'> & { intervalMs: number },
): WorktreeCleanupSchedule {
  let stopped = false;
  let busy = false;
  let running: Promise<void> = Promise.resolve();
  const pass = () => {
    // A pass still going when the timer fires again (a huge backlog) is not doubled up.
    if (busy || stopped) return;
    busy = true;
    running = (async () => {
      try {
        const r = await runWorktreeCleanup({ ...o, isStopped: () => stopped });
        if (r.removed.length || r.archivedMissing.length)
          o.logger.info('worktree cleanup done', {
            removed: r.removed.length,
            archived: r.archivedMissing.length,
          });
      } catch (err) {
        o.logger.warn('worktree cleanup failed', { error: reasonOf(err) });
      } finally {
        busy = false;
      }
    })();
  };
  pass();
  const timer = setInterval(pass, o.intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
