/**
 * Runs one claimed task with a real agent: the session's worktree, the agent over ACP, the capture of
 * what it changed into pending changes, and the task's final state — all recorded only while this
 * dispatcher still holds the task's lease.
 */
import { join } from 'node:path';
import {
  type AcpRunResult,
  cancelledBeforeSession,
  openGatedAcpSession,
  type RunAcpTaskOptions,
  runAcpTask,
} from '../agents/acp-driver.js';
import { buildAgentEnv } from '../agents/agent-env.js';
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import {
  continuableSessionId,
  findAgentSession,
  markAgentSessionActive,
  recordAgentSessionRun,
} from '../db/agent-sessions.js';
import { deleteTaskChanges, insertChanges } from '../db/pending-changes.js';
import { findProject } from '../db/projects.js';
import type { Task } from '../db/rows.js';
import { recordTaskUsage } from '../db/task-usage.js';
import { finishTask, releaseTask, renewLeases, setTaskWorktree } from '../db/tasks.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { agentSessionBackend } from '../services/execution-path.js';
import { gateTaskRun, type PermissionPolicy } from '../services/permissions.js';
import { supersedeRejected } from '../services/review.js';
import { TASKS_DONE_CHANNEL } from '../services/task-events.js';
import { captureChanges } from '../worktrees/capture.js';
import { agentProcessRecorder } from './agent-process-recorder.js';
import type { StopReason, TaskRunContext, TaskRunner } from './dispatcher.js';
import { runHeadlessTurn } from './headless-turn.js';
import { runOpencodeServeTurn } from './opencode-serve-turn.js';
import { prepareSessionWorktree } from './session-worktree.js';
import { TaskBudget } from './task-budget.js';
import { configHashOf, outcomeOf } from './task-outcome.js';

const MAX_DIFF_BYTES = 1024 * 1024;

async function recordFailure(deps: Deps, task: Task, owner: string, err: unknown): Promise<void> {
  const outcome = outcomeOf(undefined, err, undefined);
  await deps.db.transaction(async (tx) => {
    if (await finishTask(tx, task.id, owner, outcome))
      await tx.query('SELECT pg_notify($1, $2)', [TASKS_DONE_CHANNEL, task.id]);
  });
}

interface AgentTurn {
  run?: AcpRunResult;
  error?: unknown;
  /** The agent process died (or was killed) during the task. */
  processLost: boolean;
  /**
   * Hands the warm session back to the pool. Called only once the task's result is recorded: an
   * idle timer started earlier could mark the session closed before the result marks it idle.
   */
  release: () => Promise<void>;
}

const nothingToRelease = async (): Promise<void> => {};

/**
 * Runs the task's prompt on the chat's warm session for the agent when there is one with the same
 * config (recording its pid again for this task), else on a new one that is kept warm afterwards.
 */
async function runAgentTurn(
  deps: Deps,
  chatId: string,
  agent: string,
  configHash: string,
  o: RunAcpTaskOptions,
): Promise<AgentTurn> {
  const pool = deps.warmSessions;
  if (!pool) {
    try {
      return { run: await runAcpTask(o), processLost: false, release: nothingToRelease };
    } catch (error) {
      return { error, processLost: isBoocoderError(error, 'E_AGENT_FAILED'), release: nothingToRelease };
    }
  }
  const key = { chatId, agent };
  let lease: Awaited<ReturnType<typeof pool.acquire>>;
  try {
    lease = await pool.acquire(key, configHash, () => openGatedAcpSession(o));
  } catch (error) {
    return { error, processLost: isBoocoderError(error, 'E_AGENT_FAILED'), release: nothingToRelease };
  }
  if (!lease) return { run: cancelledBeforeSession(), processLost: false, release: nothingToRelease };
  const { session } = lease;
  const turn: AgentTurn = { processLost: false, release: () => pool.release(key, session) };
  try {
    if (lease.reused) await o.onSpawn?.(session.pid);
    turn.run = await session.prompt({
      text: o.prompt,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onUsage ? { onUsage: o.onUsage } : {}),
      timeoutMs: o.timeoutMs,
      ...(o.onPermissionRequest ? { onPermissionRequest: o.onPermissionRequest } : {}),
    });
  } catch (error) {
    turn.error = error;
  }
  turn.processLost = !session.alive;
  // A client's cancel stops the agent too (after session/cancel let it end its turn): whoever
  // cancels expects nothing of that agent to keep running, and the next task starts it fresh.
  if (o.signal?.reason === 'cancel') await session.close();
  return turn;
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
  const budget = TaskBudget.of(task);
  const ctx: TaskRunContext = {
    owner: dispatcherCtx.owner,
    signal: AbortSignal.any([gate.signal, budget.signal]),
  };
  const spec = resolveLaunchSpec(agent, deps.config.agents);
  const project = await findProject(deps.db, task.projectId);
  if (!project || !task.sessionId || !task.chatId) {
    throw new BoocoderError('E_NOT_FOUND', 'the task has no project, session or chat any more');
  }
  const wt = await prepareSessionWorktree(deps, project, task.sessionId, join(deps.config.home, 'worktrees'));
  await setTaskWorktree(deps.db, task.id, wt.path);
  const native = task.executionPath === 'native';
  const key = {
    chatId: task.chatId,
    agent,
    sessionId: task.sessionId,
    worktreeId: wt.id,
    backend: agentSessionBackend(task.executionPath),
  };
  const configHash = configHashOf(agent, spec, task, wt.path);
  const previous = await findAgentSession(deps.db, task.chatId, agent);
  await markAgentSessionActive(deps.db, key, configHash);
  if (key.backend === 'headless') {
    const run = await runHeadlessTurn(deps, ctx, {
      task,
      spec,
      cwd: wt.path,
      previous,
      configHash,
      permissions,
    });
    return recordTurn(deps, task, ctx, {
      agent,
      project,
      wt,
      budget,
      turn: { ...run, release: nothingToRelease },
    });
  }

  const turn = native
    ? {
        ...(await runOpencodeServeTurn(deps, {
          spec,
          cwd: wt.path,
          prompt: task.input,
          signal: ctx.signal,
          previous,
          configHash,
          ...(task.model ? { model: task.model } : {}),
          ...(gate.asker ? { asker: gate.asker } : {}),
        })),
        release: nothingToRelease,
      }
    : await runAgentTurn(deps, task.chatId, agent, configHash, {
        spec,
        cwd: wt.path,
        prompt: task.input,
        model: task.model ?? undefined,
        mode: task.modeId ?? undefined,
        thinking: task.thinkingOptionId ?? undefined,
        features: task.featureValues ?? undefined,
        // When no live process holds it any more (a restart, an idle close): ACP session/load.
        resumeSessionId: continuableSessionId(previous, 'acp_warm', configHash),
        env: buildAgentEnv({ spec, home: deps.config.home, childEnv: deps.config.childEnv }),
        signal: ctx.signal,
        timeoutMs: deps.config.taskTimeoutMs,
        ...(gate.asker ? { onPermissionRequest: gate.asker } : {}),
        onUsage: (usage) => budget.report(usage),
        logger: deps.logger.child({ taskId: task.id, agent }),
        onSpawn: agentProcessRecorder(deps, task.id, ctx.owner, deps.logger),
      });
  try {
    await recordTurn(deps, task, ctx, { agent, project, wt, budget, turn });
  } finally {
    await turn.release();
  }
}

interface TurnRecord {
  agent: string;
  project: NonNullable<Awaited<ReturnType<typeof findProject>>>;
  wt: Awaited<ReturnType<typeof prepareSessionWorktree>>;
  budget: TaskBudget;
  turn: AgentTurn;
}

/** Captures what the agent changed and records the task's result, while the lease is still ours. */
async function recordTurn(deps: Deps, task: Task, ctx: TaskRunContext, r: TurnRecord): Promise<void> {
  const { agent, project, wt, turn, budget } = r;
  const chatId = task.chatId as string;
  const { run, error: runError } = turn;
  // Agents that report usage only with the turn's end (Gemini, the headless CLIs) meet their budget here.
  if (!ctx.signal.aborted) budget.report(run?.usage);
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
    limits: { maxFiles: 5000, maxDiffBytes: MAX_DIFF_BYTES },
  });
  // A follow-up of request_changes: its changes replace the rejected ones, from their base.
  const recorded = await supersedeRejected(deps, project.rootPath, task.id, captured.changes, MAX_DIFF_BYTES);
  const outcome = outcomeOf(run, runError, stop, budget.exceeded);
  const crashed = turn.processLost;
  await deps.db.transaction(async (tx) => {
    await deleteTaskChanges(tx, task.id);
    await insertChanges(
      tx,
      recorded.map((c) => ({
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
    await recordTaskUsage(tx, task.id, run?.usage);
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
