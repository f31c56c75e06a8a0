/**
 * Runs one claimed task with a real agent: the session's worktree, the agent over ACP, the capture of
 * what it changed into pending changes, and the task's final state — all recorded only while this
 * dispatcher still holds the task's lease.
 */
import { join } from 'node:path';
import { type AcpRunResult, runAcpTask } from '../agents/acp-driver.js';
import { buildAgentEnv } from '../agents/agent-env.js';
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import { markAgentSessionActive, recordAgentSessionRun } from '../db/agent-sessions.js';
import { deleteTaskChanges, insertChanges } from '../db/pending-changes.js';
import { findProject } from '../db/projects.js';
import type { Task } from '../db/rows.js';
import {
  finishTask,
  recordAgentProcess,
  releaseTask,
  renewLeases,
  setTaskWorktree,
  type TaskOutcome,
} from '../db/tasks.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { TASKS_DONE_CHANNEL } from '../services/task-events.js';
import { captureChanges } from '../worktrees/capture.js';
import type { StopReason, TaskRunContext, TaskRunner } from './dispatcher.js';
import { describeAgentProcess } from './orphaned-agents.js';
import { prepareSessionWorktree } from './session-worktree.js';

const SUMMARY_MAX = 16 * 1024;

function outcomeOf(run: AcpRunResult | undefined, err: unknown, stop: StopReason | undefined): TaskOutcome {
  const usage = run?.usage;
  const costTokens = usage ? usage.inputTokens + usage.outputTokens : null;
  const summary = run?.outputText ? run.outputText.slice(0, SUMMARY_MAX) : null;
  if (stop === 'cancel') {
    return {
      state: 'cancelled',
      outputSummary: summary,
      costTokens,
      errorCode: 'E_CANCELLED',
      lastError: 'cancelled by a client',
    };
  }
  if (err || stop === 'timeout') {
    const code = isBoocoderError(err) ? err.code : stop === 'timeout' ? 'E_AGENT_TIMEOUT' : 'E_AGENT_FAILED';
    const message = isBoocoderError(err)
      ? err.message
      : 'the agent run failed; the server log has the details';
    return { state: 'failed', outputSummary: summary, costTokens, errorCode: code, lastError: message };
  }
  if (run && run.stopReason !== 'end_turn') {
    const state = run.stopReason === 'cancelled' ? 'cancelled' : 'failed';
    return {
      state,
      outputSummary: summary,
      costTokens,
      errorCode: null,
      lastError: `the agent stopped: ${run.stopReason}`,
    };
  }
  return { state: 'completed', outputSummary: summary, costTokens, errorCode: null, lastError: null };
}

async function recordFailure(deps: Deps, task: Task, owner: string, err: unknown): Promise<void> {
  const outcome = outcomeOf(undefined, err, undefined);
  await deps.db.transaction(async (tx) => {
    if (await finishTask(tx, task.id, owner, outcome))
      await tx.query('SELECT pg_notify($1, $2)', [TASKS_DONE_CHANNEL, task.id]);
  });
}

async function runAgent(deps: Deps, task: Task, ctx: TaskRunContext): Promise<void> {
  const agent = task.agent ?? deps.config.defaultAgent;
  const spec = resolveLaunchSpec(agent, deps.config.agents);
  const project = await findProject(deps.db, task.projectId);
  if (!project || !task.sessionId || !task.chatId) {
    throw new BoocoderError('E_NOT_FOUND', 'the task has no project, session or chat any more');
  }
  const wt = await prepareSessionWorktree(deps, project, task.sessionId, join(deps.config.home, 'worktrees'));
  await setTaskWorktree(deps.db, task.id, wt.path);
  const key = {
    chatId: task.chatId,
    agent,
    sessionId: task.sessionId,
    worktreeId: wt.id,
    backend: 'acp_warm' as const,
  };
  await markAgentSessionActive(deps.db, key, `${agent}:${task.model ?? ''}`);

  let run: AcpRunResult | undefined;
  let runError: unknown;
  try {
    run = await runAcpTask({
      spec,
      cwd: wt.path,
      prompt: task.input,
      model: task.model ?? undefined,
      env: buildAgentEnv({ spec, home: deps.config.home, childEnv: deps.config.childEnv }),
      signal: ctx.signal,
      timeoutMs: deps.config.taskTimeoutMs,
      logger: deps.logger.child({ taskId: task.id, agent }),
      // Before the agent gets its prompt: if this dispatcher dies from here on, whoever takes the
      // lease over can find the agent and kill it.
      onSpawn: async (pid) => {
        const rec = describeAgentProcess(pid);
        if (!rec) return;
        try {
          await recordAgentProcess(deps.db, task.id, ctx.owner, rec);
        } catch (err) {
          deps.logger.warn('could not record the agent process', { taskId: task.id, err });
        }
      },
    });
  } catch (err) {
    runError = err;
  }
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
    await recordAgentSessionRun(deps.db, task.chatId, agent, {
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
  const crashed = isBoocoderError(runError, 'E_AGENT_FAILED');
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
    await recordAgentSessionRun(tx, task.chatId as string, agent, {
      agentSessionId: run?.agentSessionId ?? null,
      status: crashed ? 'crashed' : 'idle',
      inputTokens: run?.usage?.inputTokens ?? 0,
      outputTokens: run?.usage?.outputTokens ?? 0,
      cost: run?.usage?.cost ?? 0,
    });
    await tx.query('SELECT pg_notify($1, $2)', [TASKS_DONE_CHANNEL, task.id]);
  });
}

/** The production task runner: a real agent in the session's worktree. */
export function createAgentTaskRunner(deps: Deps): TaskRunner {
  return async (task, ctx) => {
    try {
      await runAgent(deps, task, ctx);
    } catch (err) {
      deps.logger.warn('task failed', { taskId: task.id, err });
      await recordFailure(deps, task, ctx.owner, err);
    }
  };
}
