/** Task use cases: queue, read, wait for, list and cancel tasks. */
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import type { Budget } from '../config.js';
import type { Queryable } from '../db/db.js';
import { findChat, findSession, insertChat, insertSession } from '../db/projects.js';
import type { Task, TaskState } from '../db/rows.js';
import {
  findReplayableTask,
  insertTask,
  isRequestIdTaken,
  releaseStaleRequestId,
} from '../db/task-inserts.js';
import * as tasks from '../db/tasks.js';
import { handOverInserted } from '../dispatcher/slot-reservation.js';
import { BoocoderError } from '../errors.js';
import { refuseUnusableAgent } from './agents.js';
import type { Deps } from './deps.js';
import { chooseExecutionPath } from './execution-path.js';
import { pathFromRoots, resolveProject } from './projects.js';

export const FINAL_STATES: readonly TaskState[] = ['completed', 'failed', 'blocked', 'cancelled'];

export interface NewTaskInput {
  project?: string;
  input: string;
  agent?: string;
  model?: string;
  /** The agent's mode, thought level and other config options by id (see applySessionConfig). */
  mode?: string;
  thinking?: string;
  features?: Readonly<Record<string, string | boolean>>;
  parentTaskId?: string;
  sessionId?: string;
  chatId?: string;
  /** acp, headless or serve (see execution-path.ts); absent: the configured default. */
  executionPath?: string;
  /** Set by new_arena only: the arena this task is a contender of. */
  arenaId?: string;
  /** The client's id for this call: a retry with the same id within REPLAY_WINDOW_S replays. */
  requestId?: string;
  /** The task's budget; absent: the project's default from the config file, if any. */
  maxCost?: number;
  maxTokens?: number;
}

export interface QueuedTask {
  task: Task;
  projectId: string;
  sessionId: string;
  chatId: string;
  /** True when request_id matched an earlier call: `task` is the one that call created. */
  replayed: boolean;
}

/** How long a request_id is remembered: a retry later than this queues a new task. */
export const REPLAY_WINDOW_S = 24 * 3600;

function replayOf(task: Task): QueuedTask {
  return {
    task,
    projectId: task.projectId,
    sessionId: task.sessionId as string,
    chatId: task.chatId as string,
    replayed: true,
  };
}

/** The config file's budget for the project (by root path), else its "*" budget. */
function defaultBudget(deps: Deps, rootPath: string): Budget {
  return deps.config.budgets[rootPath] ?? deps.config.budgets['*'] ?? {};
}

async function resolveSessionAndChat(
  tx: Queryable,
  projectId: string,
  sessionId: string | undefined,
  chatId: string | undefined,
): Promise<{ sessionId: string; chatId: string }> {
  if (chatId) {
    const chat = await findChat(tx, chatId);
    if (!chat) throw new BoocoderError('E_CHAT_NOT_FOUND', `no chat has id ${chatId}`);
    if (sessionId && chat.sessionId !== sessionId) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `chat ${chatId} belongs to another session than ${sessionId}`,
      );
    }
    sessionId = chat.sessionId;
  }
  if (sessionId) {
    const session = await findSession(tx, sessionId);
    if (!session) throw new BoocoderError('E_SESSION_NOT_FOUND', `no session has id ${sessionId}`);
    if (session.projectId !== projectId) {
      throw new BoocoderError('E_INVALID_INPUT', `session ${sessionId} belongs to another project`);
    }
  } else {
    sessionId = (await insertSession(tx, projectId, null)).id;
  }
  return { sessionId, chatId: chatId ?? (await insertChat(tx, sessionId, null)).id };
}

/**
 * PostgreSQL text cannot hold U+0000: the driver error it raises would reach the client only as
 * E_INTERNAL (and on a path, Node's fs refuses it too). A NUL smuggled into a prompt, model or path
 * is refused up front with a code the client can act on.
 */
function refuseNul(fields: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (value?.includes('\u0000')) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `${name} contains a NUL character (\\u0000), which cannot be stored; remove it and try again`,
      );
    }
  }
}

/**
 * Queues a task and returns at once. When this process's dispatcher has a free slot, the INSERT
 * claims the task for it and it starts here without waiting for a NOTIFY (slot-reservation.ts);
 * otherwise the INSERT's trigger wakes the dispatchers.
 */
export async function queueTask(
  deps: Deps,
  input: NewTaskInput,
  clientRoots: () => Promise<readonly { uri: string }[]>,
): Promise<QueuedTask> {
  const featureText = Object.entries(input.features ?? {})
    .flat()
    .filter((part) => typeof part === 'string')
    .join('');
  refuseNul({
    input: input.input,
    model: input.model,
    mode: input.mode,
    thinking: input.thinking,
    features: featureText,
    project: input.project,
    request_id: input.requestId,
  });
  const projectRef = input.project ?? pathFromRoots(await clientRoots());
  if (!projectRef) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'project is required: pass a git repository path (the client offers no root)',
    );
  }
  const agent = input.agent ?? deps.config.defaultAgent;
  const spec = resolveLaunchSpec(agent, deps.config.agents);
  const executionPath = chooseExecutionPath(deps.config, agent, input.executionPath);
  await refuseUnusableAgent(deps, spec);
  const project = await resolveProject(deps.db, projectRef, deps.config.machine);
  const { requestId } = input;
  if (requestId) {
    const earlier = await findReplayableTask(deps.db, project.id, requestId, REPLAY_WINDOW_S);
    if (earlier) return replayOf(earlier);
  }
  const budget = defaultBudget(deps, project.rootPath);
  if ((await tasks.countQueuedTasks(deps.db, project.id)) >= deps.config.maxQueuedPerProject) {
    throw new BoocoderError(
      'E_TOO_MANY_TASKS',
      `project already has ${deps.config.maxQueuedPerProject} queued or running tasks; wait for some to finish`,
    );
  }
  // Claimed at insert only by a dispatcher on the project's machine: queued by id from another
  // machine, it waits for a dispatcher there (project-machine.ts).
  const slot = project.machineId === deps.config.machine.id ? deps.dispatcher?.reserveSlot() : undefined;
  const inserting = deps.db.transaction(async (tx) => {
    if (input.parentTaskId) {
      const parent = await tasks.findTask(tx, input.parentTaskId);
      if (!parent)
        throw new BoocoderError('E_TASK_NOT_FOUND', `no task has id ${input.parentTaskId} (parent_task_id)`);
      if (parent.projectId !== project.id)
        throw new BoocoderError('E_INVALID_INPUT', 'parent task is in another project');
    }
    if (requestId) await releaseStaleRequestId(tx, project.id, requestId, REPLAY_WINDOW_S);
    const ids = await resolveSessionAndChat(tx, project.id, input.sessionId, input.chatId);
    const settings = {
      modeId: input.mode ?? null,
      thinkingOptionId: input.thinking ?? null,
      featureValues: input.features ?? null,
    };
    const task = await insertTask(tx, {
      projectId: project.id,
      ...ids,
      ...settings,
      input: input.input,
      agent,
      // The config file's model for this agent when the task names none: the row says what ran.
      model: input.model ?? spec.model ?? null,
      parentTaskId: input.parentTaskId ?? null,
      arenaId: input.arenaId ?? null,
      maxAttempts: deps.config.maxAttempts,
      claimedBy: slot?.claim,
      executionPath,
      requestId: requestId ?? null,
      maxCost: input.maxCost ?? budget.maxCost ?? null,
      maxTokens: input.maxTokens ?? budget.maxTokens ?? null,
    });
    return { task, projectId: project.id, ...ids, replayed: false };
  });
  try {
    return await handOverInserted(slot, inserting);
  } catch (err) {
    // Two retries raced: the unique index let one insert; the other answers with its task.
    if (requestId && isRequestIdTaken(err)) {
      const earlier = await findReplayableTask(deps.db, project.id, requestId, REPLAY_WINDOW_S);
      if (earlier) return replayOf(earlier);
    }
    throw err;
  }
}

export async function getTask(deps: Deps, id: string): Promise<{ task: Task; pendingChanges: number }> {
  const found = await tasks.findTaskWithChangeCount(deps.db, id);
  if (!found) throw new BoocoderError('E_TASK_NOT_FOUND', `no task has id ${id}`);
  return found;
}

/**
 * Waits up to waitS seconds for the task to leave pending/running, calling onTick every
 * tickMs while it waits (progress notifications). Returns the task as it is then.
 */
export async function waitForTask(
  deps: Deps,
  id: string,
  waitS: number,
  opts: {
    signal?: AbortSignal;
    onTick?: (task: Task, elapsedMs: number) => Promise<void>;
    tickMs?: number;
  } = {},
): Promise<{ task: Task; pendingChanges: number }> {
  const started = Date.now();
  const deadline = started + waitS * 1000;
  for (;;) {
    const current = await getTask(deps, id);
    const now = Date.now();
    if (FINAL_STATES.includes(current.task.state) || now >= deadline || opts.signal?.aborted) return current;
    await opts.onTick?.(current.task, now - started);
    await deps.events.waitForChange(id, Math.min(opts.tickMs ?? 1000, deadline - now), opts.signal);
  }
}

/** The most children get_task shows; list_tasks with parent_task_id pages through all of them. */
export const MAX_CHILDREN_SHOWN = 100;

/** A task (optionally waited for) with its sub-tasks, oldest first (at most MAX_CHILDREN_SHOWN). */
export async function getTaskWithChildren(
  deps: Deps,
  id: string,
  waited?: { waitS: number; opts: Parameters<typeof waitForTask>[3] },
): Promise<{ task: Task; pendingChanges: number; children: Task[] }> {
  const found = waited ? await waitForTask(deps, id, waited.waitS, waited.opts) : await getTask(deps, id);
  const children = await tasks.listTasks(deps.db, { parentTaskId: id, limit: MAX_CHILDREN_SHOWN });
  return { ...found, children };
}

export async function listTasks(deps: Deps, f: tasks.TaskFilter): Promise<Task[]> {
  return tasks.listTasks(deps.db, f);
}

/**
 * Cancels a pending task at once; a running one is stopped by its dispatcher (kills the agent).
 * Its live descendants are cancelled likewise.
 */
export async function cancelTask(deps: Deps, id: string): Promise<Task> {
  const task = await tasks.requestTaskCancel(deps.db, id);
  // Its sub-tasks go too (even when it had already ended): whoever cancels a task wants none of the
  // work it set going. Its scoped credential is dead from here on, so it can queue no new ones.
  for (const child of await tasks.liveDescendantIds(deps.db, id))
    await tasks.requestTaskCancel(deps.db, child);
  if (!task) {
    const existing = await tasks.findTask(deps.db, id);
    if (!existing) throw new BoocoderError('E_TASK_NOT_FOUND', `no task has id ${id}`);
    throw new BoocoderError(
      'E_TASK_NOT_CANCELLABLE',
      `task ${id} is already ${existing.state}; nothing to cancel`,
    );
  }
  return task;
}
