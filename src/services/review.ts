/**
 * Review that talks back: `request_changes` rejects changes and, in the same transaction, queues a
 * follow-up task in the chat that made them (same worktree, and the same warm agent session when
 * it is still up) whose prompt carries the reviewer's comment, each file and its diff. When the
 * follow-up's capture holds a change to one of those files, that change supersedes the rejected
 * one and is recorded against the rejected change's base (the user's file as the agent first
 * found it), not against the worktree's state after the rejected change: applying it then needs
 * no merge (dispatcher/supersede-rejected.ts). A rejected change can be made pending again with
 * `restore`.
 */
import type { Queryable } from '../db/db.js';
import * as changes from '../db/pending-changes.js';
import type { PendingChange, Task } from '../db/rows.js';
import { type ExecutionPath, insertTask } from '../db/task-inserts.js';
import * as tasks from '../db/tasks.js';
import { BoocoderError } from '../errors.js';
import { lockForAction, normaliseIds } from './changes.js';
import type { Deps } from './deps.js';

/** Each file's diff in the follow-up's prompt is cut past this (the agent has the file itself). */
const PROMPT_DIFF_CHARS = 32 * 1024;
/** The whole prompt stays within what new_task accepts. */
const PROMPT_MAX_CHARS = 256 * 1024;
export const MAX_COMMENT_CHARS = 16 * 1024;

/** The follow-up task's prompt: the comment, then every rejected file with its diff. */
export function followUpPrompt(comment: string, rejected: readonly PendingChange[]): string {
  const parts = [
    'A reviewer looked at changes you made earlier in this chat and asked for changes.',
    '',
    "Reviewer's comment:",
    comment,
    '',
    `The change(s) below were rejected: they are not in the user's repository, but your working folder still ` +
      'holds them. Rework these files as the comment asks (edit them in place; the final content of each ' +
      'file is what will be reviewed).',
  ];
  for (const c of rejected) {
    const diff =
      c.diff.length > PROMPT_DIFF_CHARS ? `${c.diff.slice(0, PROMPT_DIFF_CHARS)}\n… (diff cut here)` : c.diff;
    parts.push('', `File: ${c.filePath} (${c.operation})`, '```diff', diff, '```');
  }
  const text = parts.join('\n');
  return text.length > PROMPT_MAX_CHARS ? `${text.slice(0, PROMPT_MAX_CHARS - 20)}\n… (prompt cut)` : text;
}

/** The one task (the latest) whose chat the follow-up continues: every change must be of that chat. */
async function originOf(tx: Queryable, rows: readonly PendingChange[]): Promise<Task> {
  const found: Task[] = [];
  for (const id of new Set(rows.map((c) => c.taskId))) {
    const task = id ? await tasks.findTask(tx, id) : null;
    if (!task?.chatId || !task.sessionId)
      throw new BoocoderError(
        'E_INVALID_INPUT',
        'a change of this call has no task or chat to send it back to',
      );
    found.push(task);
  }
  if (new Set(found.map((t) => t.chatId)).size > 1) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      "these changes come from different chats; send each chat's changes back in a separate call",
    );
  }
  return found.reduce((a, b) => (b.seq > a.seq ? b : a));
}

export interface ChangesRequested {
  changes: PendingChange[];
  followUpTask: Task;
}

/** Rejects the changes and queues their chat's follow-up task, all or nothing. */
export async function requestChanges(
  deps: Deps,
  ids: readonly string[],
  comment: string,
): Promise<ChangesRequested> {
  const wanted = normaliseIds(ids);
  const text = comment.trim();
  if (!text)
    throw new BoocoderError('E_INVALID_INPUT', 'request_changes needs a comment saying what to change');
  if (text.includes('\u0000'))
    throw new BoocoderError('E_INVALID_INPUT', 'comment contains a NUL character (\\u0000); remove it');
  return deps.db.transaction(async (tx) => {
    const rows = await lockForAction(tx, wanted, 'request_changes');
    const origin = await originOf(tx, rows);
    if ((await tasks.countQueuedTasks(tx, origin.projectId)) >= deps.config.maxQueuedPerProject) {
      throw new BoocoderError(
        'E_TOO_MANY_TASKS',
        `project already has ${deps.config.maxQueuedPerProject} queued or running tasks; wait for some to finish`,
      );
    }
    const followUpTask = await insertTask(tx, {
      projectId: origin.projectId,
      sessionId: origin.sessionId as string,
      chatId: origin.chatId as string,
      input: followUpPrompt(text, rows),
      agent: origin.agent ?? deps.config.defaultAgent,
      model: origin.model,
      modeId: origin.modeId,
      thinkingOptionId: origin.thinkingOptionId,
      featureValues: origin.featureValues,
      parentTaskId: origin.id,
      maxAttempts: deps.config.maxAttempts,
      executionPath: (origin.executionPath ?? 'acp') as ExecutionPath,
      maxCost: origin.maxCost,
      maxTokens: origin.maxTokens,
    });
    const moved = await changes.transitionChanges(
      tx,
      rows.map((c) => ({ id: c.id, from: c.status })),
      'rejected',
    );
    if (moved.length !== rows.length)
      throw new BoocoderError(
        'E_CHANGE_NOT_PENDING',
        'a change was acted on by another call meanwhile; try again',
      );
    await changes.recordChangesRequested(tx, wanted, text, followUpTask.id);
    const byId = new Map(
      moved.map((c) => [c.id, { ...c, reviewComment: text, followUpTaskId: followUpTask.id }]),
    );
    return { changes: wanted.map((id) => byId.get(id) as PendingChange), followUpTask };
  });
}
