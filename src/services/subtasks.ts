/**
 * What an agent may do under a scoped credential (src/subtasks/scope-tokens.ts): queue sub-tasks
 * of its own task in its own project, and read, wait for and list those children and their
 * changes. Every call re-checks that the scope's task is still live and that the task asked about
 * is a child of it, so a token that leaks out of its agent reaches nothing else.
 */
import type { Task } from '../db/rows.js';
import * as tasks from '../db/tasks.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { SubtaskScope } from '../subtasks/scope-tokens.js';
import type { Deps } from './deps.js';
import { getTask, listTasks, queueTask, waitForTask } from './tasks.js';

/** A task whose agent may still be talking to us: running, or waiting on a permission answer. */
const LIVE_STATES: readonly string[] = ['running', 'blocked'];

/** True while the scope's task runs: a token used after its task ended is refused. */
export async function isScopeLive(deps: Deps, scope: SubtaskScope): Promise<boolean> {
  const task = await tasks.findTask(deps.db, scope.taskId);
  return (
    task !== null &&
    task.projectId === scope.projectId &&
    LIVE_STATES.includes(task.state) &&
    // A task being cancelled queues nothing more: cancelTask is sweeping its descendants.
    task.cancelRequestedAt === null
  );
}

async function assertLive(deps: Deps, scope: SubtaskScope): Promise<void> {
  if (!(await isScopeLive(deps, scope))) {
    throw new BoocoderError(
      'E_UNAUTHORIZED',
      'this credential belonged to a task that is no longer running; sub-tasks can be queued only while it runs',
    );
  }
}

export interface SubtaskInput {
  input: string;
  agent?: string;
  model?: string;
}

/** Queues a child of the scope's task in the scope's project (neither can be chosen by the agent). */
export async function queueSubtask(deps: Deps, scope: SubtaskScope, input: SubtaskInput) {
  await assertLive(deps, scope);
  // Bounds what one prompt-injected or looping agent can set going: a tree of agents, each queueing more.
  const family = await tasks.familyCounts(deps.db, scope.taskId);
  if (family.depth + 1 > deps.config.subtaskMaxDepth) {
    throw new BoocoderError(
      'E_TOO_MANY_TASKS',
      `sub-tasks nest at most ${deps.config.subtaskMaxDepth} deep (BOOCODER_SUBTASK_MAX_DEPTH); do this part yourself`,
    );
  }
  if (family.children >= deps.config.subtaskMaxChildren) {
    throw new BoocoderError(
      'E_TOO_MANY_TASKS',
      `this task already queued ${family.children} sub-tasks, the most allowed (BOOCODER_SUBTASK_MAX_CHILDREN)`,
    );
  }
  return queueTask(
    deps,
    {
      project: scope.projectId,
      input: input.input,
      agent: input.agent,
      model: input.model,
      parentTaskId: scope.taskId,
    },
    async () => [],
  );
}

/** A child of the scope's task; any other id answers "not found" (no probing of other tasks). */
export async function getSubtask(
  deps: Deps,
  scope: SubtaskScope,
  id: string,
  waitS?: number,
  signal?: AbortSignal,
): Promise<{ task: Task; pendingChanges: number }> {
  await assertLive(deps, scope);
  const found = await getTask(deps, id).catch((err: unknown) => {
    if (isBoocoderError(err, 'E_TASK_NOT_FOUND')) return undefined;
    throw err;
  });
  if (!found || found.task.parentTaskId !== scope.taskId) {
    throw new BoocoderError('E_TASK_NOT_FOUND', `no sub-task of this task has id ${id}`);
  }
  return waitS ? waitForTask(deps, id, waitS, { signal }) : found;
}

export async function listSubtasks(deps: Deps, scope: SubtaskScope, limit: number): Promise<Task[]> {
  await assertLive(deps, scope);
  return listTasks(deps, { projectId: scope.projectId, parentTaskId: scope.taskId, limit });
}
