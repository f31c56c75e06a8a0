/** Pending-change use cases: list for review, and apply / reject / revert into the project's repository. */
import * as changes from '../db/pending-changes.js';
import { findProjectOfSession, lockProjectForWrite } from '../db/projects.js';
import type { ChangeStatus, PendingChange } from '../db/rows.js';
import { BoocoderError } from '../errors.js';
import { applyFileChange, revertFileChange } from '../worktrees/apply.js';
import type { Deps } from './deps.js';

export const CHANGE_ACTIONS = ['apply', 'reject', 'revert'] as const;
export type ChangeAction = (typeof CHANGE_ACTIONS)[number];

/** Which statuses each action may start from, and where it leads. */
const TRANSITIONS: Record<ChangeAction, { from: ChangeStatus[]; to: ChangeStatus }> = {
  apply: { from: ['pending', 'reverted'], to: 'applied' },
  reject: { from: ['pending', 'reverted'], to: 'rejected' },
  revert: { from: ['applied'], to: 'reverted' },
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
    rejected: 'it was rejected; nothing to do',
    reverted: 'apply it again or reject it',
  };
  const code = action === 'revert' ? 'E_CHANGE_NOT_APPLIED' : 'E_CHANGE_NOT_PENDING';
  throw new BoocoderError(
    code,
    `change ${change.id} is ${change.status}, so it cannot be ${action === 'apply' ? 'applied' : `${action}ed`}; ${hint[change.status]}`,
  );
}

/**
 * Runs one action on one change. The row is locked and the repository serialised for the length of
 * the transaction, so two concurrent applies cannot both write; if the status update fails after the
 * file was written, the file is put back, so the repository and the row never disagree.
 */
export async function actOnChange(deps: Deps, id: string, action: ChangeAction): Promise<PendingChange> {
  let undo: (() => Promise<void>) | undefined;
  try {
    return await deps.db.transaction(async (tx) => {
      const change = await changes.lockChange(tx, id);
      if (!change) throw new BoocoderError('E_CHANGE_NOT_FOUND', `no pending change has id ${id}`);
      const rule = TRANSITIONS[action];
      if (!rule.from.includes(change.status)) refuse(change, action);
      if (action !== 'reject') {
        const project = await findProjectOfSession(tx, change.sessionId);
        if (!project)
          throw new BoocoderError('E_PROJECT_NOT_FOUND', `the project of change ${id} no longer exists`);
        await lockProjectForWrite(tx, project.id);
        if (action === 'apply') {
          await applyFileChange(project.rootPath, change);
          undo = () => revertFileChange(project.rootPath, change);
        } else {
          await revertFileChange(project.rootPath, change);
          undo = () => applyFileChange(project.rootPath, change);
        }
      }
      const moved = await changes.transitionChange(tx, id, change.status, rule.to);
      if (!moved) refuse(change, action);
      return moved;
    });
  } catch (err) {
    if (undo) {
      await undo().catch((undoErr: unknown) =>
        deps.logger.error('could not undo a file write after a failed status update', {
          changeId: id,
          err: undoErr,
        }),
      );
    }
    throw err;
  }
}
