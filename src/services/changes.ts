/** Pending-change use cases: list for review, and apply / reject / revert into the project's repository. */

import { join } from 'node:path';
import type { Queryable } from '../db/db.js';
import * as changes from '../db/pending-changes.js';
import { findProjectOfSession, lockProjectForWrite, type Project } from '../db/projects.js';
import type { ChangeStatus, PendingChange } from '../db/rows.js';
import { announceChangesReviewed } from '../db/task-events.js';
import { BoocoderError } from '../errors.js';
import { type AppliedFile, applyFileChanges, revertFileChanges } from '../worktrees/apply-batch.js';
import type { FileChange } from '../worktrees/apply-guards.js';
import type { Deps } from './deps.js';
import { assertProjectHere } from './project-machine.js';

/** Where batch writes keep their journal of temp files (swept at start-up: see app.ts). */
export const applyJournalDir = (deps: Pick<Deps, 'config'>) => join(deps.config.home, 'apply-journal');

export const CHANGE_ACTIONS = ['apply', 'reject', 'revert', 'request_changes', 'restore'] as const;
export type ChangeAction = (typeof CHANGE_ACTIONS)[number];

/** Which statuses each action may start from, and where it leads. */
const TRANSITIONS: Record<ChangeAction, { from: ChangeStatus[]; to: ChangeStatus }> = {
  apply: { from: ['pending', 'reverted'], to: 'applied' },
  reject: { from: ['pending', 'reverted'], to: 'rejected' },
  revert: { from: ['applied'], to: 'reverted' },
  // A rejection plus a follow-up task (services/review.ts).
  request_changes: { from: ['pending', 'reverted'], to: 'rejected' },
  // Undoes a rejection: the change can be reviewed (and applied) again.
  restore: { from: ['rejected'], to: 'pending' },
};

export function encodeCursor(seq: number): string {
  return Buffer.from(`c:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): number {
  if (!cursor) return 0;
  const m = /^c:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m?.[1])
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'cursor is not one this server returned; omit it to start over',
    );
  return Number(m[1]);
}

export interface ChangePage {
  changes: PendingChange[];
  nextCursor: string | null;
}

export async function listPendingChanges(
  deps: Deps,
  f: Omit<changes.ChangeFilter, 'afterSeq'> & { cursor?: string },
): Promise<ChangePage> {
  const rows = await changes.listChanges(deps.db, {
    ...f,
    afterSeq: decodeCursor(f.cursor),
    limit: f.limit + 1,
  });
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return { changes: page, nextCursor: rows.length > f.limit && last ? encodeCursor(last.seq) : null };
}

export async function getChange(deps: Deps, id: string): Promise<PendingChange> {
  const change = await changes.findChange(deps.db, id);
  if (!change) throw new BoocoderError('E_CHANGE_NOT_FOUND', `no pending change has id ${id}`);
  return change;
}

function refuse(change: PendingChange, action: ChangeAction): never {
  const hint: Record<ChangeStatus, string> = {
    pending: 'apply or reject it',
    applied: 'use action=revert to undo it',
    rejected: 'it was rejected; action=restore makes it pending again',
    reverted: 'apply it again or reject it',
  };
  const code = action === 'revert' ? 'E_CHANGE_NOT_APPLIED' : 'E_CHANGE_NOT_PENDING';
  const verb: Record<ChangeAction, string> = {
    apply: 'applied',
    reject: 'rejected',
    revert: 'reverted',
    request_changes: 'sent back with request_changes',
    restore: 'restored',
  };
  throw new BoocoderError(
    code,
    `change ${change.id} is ${change.status}, so it cannot be ${verb[action]}; ${hint[change.status]}`,
  );
}

/**
 * An applied change as revert sees it: when apply merged, the file holds the merge, not the
 * change's result, and revert puts back what the file held before (stored by apply), not the base.
 */
function asApplied(c: PendingChange): FileChange {
  if (!c.mergedOid) return c;
  return { ...c, operation: 'edit', baseOid: c.priorOid, baseMode: c.priorMode, resultOid: c.mergedOid };
}

/** The rows of `ids`, locked, in the order asked; the first missing or unmovable one stops everything. */
export async function lockForAction(
  tx: Queryable,
  ids: readonly string[],
  action: ChangeAction,
): Promise<PendingChange[]> {
  const locked = new Map((await changes.lockChanges(tx, ids)).map((c) => [c.id, c]));
  const rows = ids.map((id) => {
    const change = locked.get(id);
    if (!change) throw new BoocoderError('E_CHANGE_NOT_FOUND', `no pending change has id ${id}`);
    return change;
  });
  const rule = TRANSITIONS[action];
  for (const change of rows) if (!rule.from.includes(change.status)) refuse(change, action);
  return rows;
}

/** The one project all the changes belong to (a batch writes into one repository). */
async function projectOf(tx: Queryable, rows: readonly PendingChange[]): Promise<Project> {
  const projects = new Map<string, Project>();
  for (const sessionId of new Set(rows.map((c) => c.sessionId))) {
    const project = await findProjectOfSession(tx, sessionId);
    const change = rows.find((c) => c.sessionId === sessionId) as PendingChange;
    if (!project)
      throw new BoocoderError('E_PROJECT_NOT_FOUND', `the project of change ${change.id} no longer exists`);
    projects.set(project.id, project);
  }
  if (projects.size > 1) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `these changes belong to ${projects.size} projects; apply each project's changes in a separate call`,
    );
  }
  return [...projects.values()][0] as Project;
}

/** Lowercased (how PostgreSQL prints a uuid) and checked for repeats. */
export function normaliseIds(ids: readonly string[]): string[] {
  const out = ids.map((id) => id.toLowerCase());
  const seen = new Set<string>();
  for (const id of out) {
    if (seen.has(id)) throw new BoocoderError('E_INVALID_INPUT', `change ${id} is listed twice`);
    seen.add(id);
  }
  if (out.length === 0) throw new BoocoderError('E_INVALID_INPUT', 'no change ids were given');
  return out;
}

/**
 * Runs one action on many changes, all or nothing, in one transaction. The rows are locked (in id
 * order, so two batches cannot deadlock) and the repository serialised for the length of the
 * transaction, so two concurrent applies cannot both write; the files are written as one batch
 * (apply-batch.ts: nothing is written unless every file can be); if the status update fails after
 * the files were written, they are put back, so the repository and the rows never disagree.
 * Returns the changes in the order of `ids`.
 */
export async function actOnChanges(
  deps: Deps,
  ids: readonly string[],
  action: Exclude<ChangeAction, 'request_changes'>,
): Promise<PendingChange[]> {
  const wanted = normaliseIds(ids);
  let undo: (() => Promise<void>) | undefined;
  try {
    return await deps.db.transaction(async (tx) => {
      const rows = await lockForAction(tx, wanted, action);
      if (action === 'apply' || action === 'revert') {
        const project = await assertProjectHere(tx, await projectOf(tx, rows), deps.config.machine);
        await lockProjectForWrite(tx, project.id);
        const options = { journalDir: applyJournalDir(deps) };
        if (action === 'apply') {
          const applied = await applyFileChanges(project.rootPath, rows, options);
          const after = rows.map((c, i) => ({ ...c, ...(applied[i] as AppliedFile) }));
          undo = () => revertFileChanges(project.rootPath, after.map(asApplied), options);
          await changes.recordApplied(tx, after);
        } else {
          await revertFileChanges(project.rootPath, rows.map(asApplied), options);
          undo = async () => void (await applyFileChanges(project.rootPath, rows, options));
        }
      }
      const rule = TRANSITIONS[action];
      const moved = new Map(
        (
          await changes.transitionChanges(
            tx,
            rows.map((c) => ({ id: c.id, from: c.status })),
            rule.to,
          )
        ).map((c) => [c.id, c]),
      );
      const result = rows.map((c) => moved.get(c.id) ?? refuse(c, action));
      await announceChangesReviewed(
        tx,
        rows.map((c) => c.taskId),
      );
      return result;
    });
  } catch (err) {
    if (undo) {
      await undo().catch((undoErr: unknown) =>
        deps.logger.error('could not undo file writes after a failed status update', {
          changeIds: wanted.slice(0, 20),
          err: undoErr,
        }),
      );
    }
    throw err;
  }
}

/** `actOnChanges` for one change: the status moves only if the file write (if any) succeeded. */
export async function actOnChange(
  deps: Deps,
  id: string,
  action: Exclude<ChangeAction, 'request_changes'>,
): Promise<PendingChange> {
  const [change] = await actOnChanges(deps, [id], action);
  return change as PendingChange;
}
