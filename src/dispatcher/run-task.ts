/**
 * Runs one claimed task with a real agent: the session's worktree, the agent over ACP, the capture of
 * what it changed into pending changes, and the task's final state — all recorded only while this
 * dispatcher still holds the task's lease.
 */
import { join } from 'node:path';
import type { AgentTurnResult, BackendSession } from '../agents/agent-backend.js';
import { backendOf } from '../agents/backends.js';
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import { findAgentSession, markAgentSessionActive, recordAgentSessionRun } from '../db/agent-sessions.js';
import { deleteTaskChanges, insertChanges, pathsAppliedSince } from '../db/pending-changes.js';
import { findProject } from '../db/projects.js';
import type { Task } from '../db/rows.js';
import { finishTask, releaseTask, renewLeases, setTaskWorktree } from '../db/tasks.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { gateTaskRun, type PermissionPolicy } from '../services/permissions.js';
import { TASKS_DONE_CHANNEL } from '../services/task-events.js';
import { captureChanges } from '../worktrees/capture.js';
import { outsideWriteError, watchOutsideWrites } from '../worktrees/outside-writes.js';
import { agentProcessRecorder } from './agent-process-recorder.js';
import type { StopReason, TaskRunContext, TaskRunner } from './dispatcher.js';
import { prepareSessionWorktree } from './session-worktree.js';
import { configHashOf, outcomeOf } from './task-outcome.js';

async function recordFailure(deps: Deps, task: Task, owner: string, err: unknown): Promise<void> {
  const outcome = outcomeOf(undefined, err, undefined);
  await deps.db.transaction(async (tx) => {
    if (await finishTask(tx, task.id, owner, outcome))
      await tx.query('SELECT pg_notify($1, $2)', [TASKS_DONE_CHANNEL, task.id]);
  });
}

/** How the task's turn went: its result or its error, and whether the agent's process was lost. */
interface FinishedTurn {
  run?: AgentTurnResult;
  error?: unknown;
  processLost: boolean;
}

async function runAgent(
  deps: Deps,
  task: Task,
  dispatcherCtx: TaskRunContext,
  permissions: PermissionPolicy,
): Promise<void> {
  const agent = task.agent ?? deps.config.defaultAgent;
  const gate = gateTaskRun(deps, permissions, {
    task,
    agent,
    owner: dispatcherCtx.owner,
    signal: dispatcherCtx.signal,
  });
  const ctx: TaskRunContext = { owner: dispatcherCtx.owner, signal: gate.signal };
  const spec = resolveLaunchSpec(agent, deps.config.agents);
  const project = await findProject(deps.db, task.projectId);
  if (!project || !task.sessionId || !task.chatId) {
    throw new BoocoderError('E_NOT_FOUND', 'the task has no project, session or chat any more');
  }
  const wt = await prepareSessionWorktree(deps, project, task.sessionId, join(deps.config.home, 'worktrees'));
  await setTaskWorktree(deps.db, task.id, wt.path);
  const outside = await watchOutsideWrites({
    projectRoot: project.rootPath,
    home: deps.config.home,
    appliedSince: (since) => pathsAppliedSince(deps.db, project.id, since),
  });
  const backend = backendOf(deps.backends, task.executionPath);
  const key = {
    chatId: task.chatId,
    agent,
    sessionId: task.sessionId,
    worktreeId: wt.id,
    backend: backend.sessionBackend,
  };
  const configHash = configHashOf(agent, spec, task, wt.path);
  const previous = await findAgentSession(deps.db, task.chatId, agent);
  await markAgentSessionActive(deps.db, key, configHash);
  const logger = deps.logger.child({ taskId: task.id, agent });
  let session: BackendSession | undefined;
  const turn: FinishedTurn = { processLost: false };
  try {
    session = await backend.openSession({
      task,
      spec,
      cwd: wt.path,
      previous,
      configHash,
      signal: ctx.signal,
      ...(gate.asker ? { asker: gate.asker } : {}),
      onSpawn: agentProcessRecorder(deps, task.id, ctx.owner, logger),
      logger,
    });
    turn.run = await session.runTurn();
  } catch (error) {
    turn.error = error;
  }
  turn.processLost = session ? session.processLost : isBoocoderError(turn.error, 'E_AGENT_FAILED');
  // E_AGENT_WROTE_OUTSIDE_WORKTREE when the agent changed the project's checkout or boocoder's
  // working directory meanwhile: a write past review would otherwise end `completed`, with nothing
  // pending to tell it happened. It wins over the run's own error.
  turn.error = outsideWriteError(await outside.changes()) ?? turn.error;
  try {
    await recordTurn(deps, task, ctx, { agent, project, wt, turn });
  } finally {
    // Only once the result is recorded: an idle timer started earlier could mark a warm session
    // closed before the result marks it idle.
    await session?.release();
  }
}

interface TurnRecord {
  agent: string;
  project: NonNullable<Awaited<ReturnType<typeof findProject>>>;
  wt: Awaited<ReturnType<typeof prepareSessionWorktree>>;
  turn: FinishedTurn;
}

/** Captures what the agent changed and records the task's result, while the lease is still ours. */
async function recordTurn(deps: Deps, task: Task, ctx: TaskRunContext, r: TurnRecord): Promise<void> {
  const { agent, project, wt, turn } = r;
  const chatId = task.chatId as string;
  const { run, error: runError } = turn;
  let stop = ctx.signal.reason as StopReason | undefined;
  // The capture commits in the shared worktree: if the lease expired meanwhile, a new attempt may
  // already be resetting it, so make sure (and extend) the lease is still ours first.
  if (stop !== 'shutdown' && stop !== 'lease-lost') {
    const held = await renewLeases(deps.db, ctx.owner, [task.id], deps.config.leaseMs);
    if (held.length === 0) stop = 'lease-lost';
  }
  if (stop === 'shutdown' || stop === 'lease-lost') {
    // Not this attempt's to record: on shutdown the task goes back to the queue; a lost lease
    // means another dispatcher owns it now. The next attempt starts from the recorded head.
    if (stop === 'shutdown') await releaseTask(deps.db, task.id, ctx.owner);
    await recordAgentSessionRun(deps.db, chatId, agent, {
      agentSessionId: null,
      status: 'idle',
      inputTokens: 0,
      outputTokens: 0,
      cost: 0,
    });
    return;
  }
  const captured = await captureChanges({
    repoPath: project.rootPath,
    worktreePath: wt.path,
    sinceCommit: wt.headCommit,
    message: `boocoder task ${task.id}`,
    limits: { maxFiles: 5000, maxDiffBytes: 1024 * 1024 },
  });
  const outcome = outcomeOf(run, runError, stop);
  const crashed = turn.processLost;
  await deps.db.transaction(async (tx) => {
    await deleteTaskChanges(tx, task.id);
    await insertChanges(
      tx,
      captured.changes.map((c) => ({
        ...c,
        sessionId: task.sessionId as string,
        taskId: task.id,
        worktreeId: wt.id,
        agent,
      })),
    );
    await tx.query('UPDATE worktrees SET head_commit = $2, updated_at = clock_timestamp() WHERE id = $1', [
      wt.id,
      captured.commit,
    ]);
    if (!(await finishTask(tx, task.id, ctx.owner, outcome))) {
      throw new BoocoderError('E_INTERNAL', 'the task lease was lost before its result was recorded');
    }
    await recordAgentSessionRun(tx, chatId, agent, {
      agentSessionId: run?.agentSessionId ?? null,
      status: crashed ? 'crashed' : 'idle',
      inputTokens: run?.usage?.inputTokens ?? 0,
      outputTokens: run?.usage?.outputTokens ?? 0,
      cost: run?.usage?.cost ?? 0,
    });
    await tx.query('SELECT pg_notify($1, $2)', [TASKS_DONE_CHANNEL, task.id]);
  });
}

export interface AgentTaskRunnerOptions {
  /** How agents' permission requests are answered; defaults to the configured policy. */
  permissions?: PermissionPolicy;
}

/** The production task runner: a real agent in the session's worktree. */
export function createAgentTaskRunner(deps: Deps, options: AgentTaskRunnerOptions = {}): TaskRunner {
  const permissions = options.permissions ?? deps.config.permissions;
  return async (task, ctx) => {
    try {
      await runAgent(deps, task, ctx, permissions);
    } catch (err) {
      deps.logger.warn('task failed', { taskId: task.id, err });
      await recordFailure(deps, task, ctx.owner, err);
    }
  };
}
