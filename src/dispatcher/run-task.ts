/**
 * Runs one claimed task with a real agent: the session's worktree, the agent over ACP, the capture of
 * what it changed into pending changes, and the task's final state — all recorded only while this
 * dispatcher still holds the task's lease.
 */
import type { AgentTurnResult, BackendSession } from '../agents/agent-backend.js';
import { type AgentBackends, backendOf } from '../agents/backends.js';
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import type { Config } from '../config.js';
import { findAgentSession, markAgentSessionActive, recordAgentSessionRun } from '../db/agent-sessions.js';
import type { Db } from '../db/db.js';
import { deleteTaskChanges, insertChanges, pathsAppliedSince } from '../db/pending-changes.js';
import { findProject } from '../db/projects.js';
import type { Task } from '../db/rows.js';
import { recordTaskCheck } from '../db/task-checks.js';
import { recordTaskUsage } from '../db/task-usage.js';
import { finishTask, releaseTask, renewLeases } from '../db/tasks.js';
import { setWorktreeHead } from '../db/worktrees.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { type GateDeps, gateTaskRun } from '../permissions/gate.js';
import type { PermissionPolicy } from '../permissions/policy.js';
import { captureChanges } from '../worktrees/capture.js';
import { outsideWriteError, watchOutsideWrites } from '../worktrees/outside-writes.js';
import { agentProcessRecorder } from './agent-process-recorder.js';
import { runContenderCheck } from './arena-check.js';
import { supersedeRejected } from './supersede-rejected.js';
import { TaskBudget } from './task-budget.js';
import { configHashOf, outcomeOf } from './task-outcome.js';
import type { StopReason, TaskRunContext, TaskRunner } from './task-runner.js';
import { startTaskTranscript, type TaskTranscript } from './task-transcript.js';
import { type PreparedTaskWorktree, prepareTaskWorktree } from './worktree-setup.js';

const MAX_DIFF_BYTES = 1024 * 1024;

async function recordFailure(deps: RunnerDeps, task: Task, ctx: TaskRunContext, err: unknown): Promise<void> {
  const stop = ctx.signal.reason as StopReason | undefined;
  // Stopped while preparing (setup command): shutdown gives the task back, a cancel cancels it.
  if (stop === 'lease-lost') return;
  if (stop === 'shutdown') return void (await releaseTask(deps.db, task.id, ctx.owner));
  const outcome = outcomeOf(undefined, err, stop === 'cancel' ? stop : undefined);
  await finishTask(deps.db, task.id, ctx.owner, outcome);
  // The end of a run that failed before its turn was recorded (task-transcript.ts logs the others).
  deps.logger.info('task ended', {
    taskId: task.id,
    agent: task.agent ?? deps.config.defaultAgent,
    path: task.executionPath ?? 'acp',
    state: outcome.state,
    errorCode: outcome.errorCode,
  });
}

/**
 * What the agent task runner needs of the process: a part of the services' Deps, declared here so
 * the dispatcher imports nothing from the layer above it.
 */
export interface RunnerDeps extends GateDeps {
  db: Db;
  config: Config;
  logger: Logger;
  backends: AgentBackends;
}

/** How the task's turn went: its result or its error, and whether the agent's process was lost. */
interface FinishedTurn {
  run?: AgentTurnResult;
  error?: unknown;
  processLost: boolean;
}

async function runAgent(
  deps: RunnerDeps,
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
  const { wt, env, portEnv } = await prepareTaskWorktree(deps, { task, project, spec, signal: ctx.signal });
  const transcript = await startTaskTranscript(deps, task, agent, wt.path);
  // Watched from here on: the setup command (run above, in the worktree) is not the agent's doing.
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
      onSpawn: agentProcessRecorder(deps.db, task.id, ctx.owner, logger),
      onEvent: transcript.recorder.onEvent,
      logger,
      worktreeEnv: portEnv,
      // Budgets: the acp backend reports usage mid-turn; the others' arrives with the result (recordTurn).
      onUsage: (usage) => budget.report(usage),
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
    await recordTurn(deps, task, ctx, { agent, project, wt, env, budget, turn, transcript });
  } finally {
    // Only once the result is recorded: an idle timer started earlier could mark a warm session
    // closed before the result marks it idle.
    await session?.release();
  }
}

interface TurnRecord {
  agent: string;
  project: NonNullable<Awaited<ReturnType<typeof findProject>>>;
  wt: PreparedTaskWorktree['wt'];
  /** the agent's environment: an arena contender's check runs with it */
  env: Readonly<Record<string, string>>;
  budget: TaskBudget;
  turn: FinishedTurn;
  transcript: TaskTranscript;
}

/** Captures what the agent changed and records the task's result, while the lease is still ours. */
async function recordTurn(deps: RunnerDeps, task: Task, ctx: TaskRunContext, r: TurnRecord): Promise<void> {
  const { agent, project, wt, turn, budget } = r;
  const chatId = task.chatId as string;
  const { run, error: runError } = turn;
  // Everything the agent did is stored before the task's end is announced.
  await r.transcript.end(runError);
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
  const recorded = await supersedeRejected(
    deps.db,
    project.rootPath,
    task.id,
    captured.changes,
    MAX_DIFF_BYTES,
  );
  const outcome = outcomeOf(run, runError, stop, budget.exceeded);
  const crashed = turn.processLost;
  const check =
    task.arenaId && outcome.state === 'completed'
      ? await runContenderCheck({
          taskId: task.id,
          config: deps.config,
          rootPath: project.rootPath,
          cwd: wt.path,
          env: r.env,
          signal: ctx.signal,
        })
      : undefined;
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
    await setWorktreeHead(tx, wt.id, captured.commit);
    if (check) await recordTaskCheck(tx, check);
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
  });
  r.transcript.logEnd(outcome, captured.changes.length, run?.usage);
}

export interface AgentTaskRunnerOptions {
  /** How agents' permission requests are answered; defaults to the configured policy. */
  permissions?: PermissionPolicy;
}

/** The production task runner: a real agent in the session's worktree. */
export function createAgentTaskRunner(deps: RunnerDeps, options: AgentTaskRunnerOptions = {}): TaskRunner {
  const permissions = options.permissions ?? deps.config.permissions;
  return async (task, ctx) => {
    try {
      await runAgent(deps, task, ctx, permissions);
    } catch (err) {
      deps.logger.warn('task failed', { taskId: task.id, err });
      await recordFailure(deps, task, ctx, err);
    }
  };
}
