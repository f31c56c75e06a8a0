/**
 * A task on the `pty` execution path: one headless run of the agent's CLI in the session's
 * worktree (headless-run.ts), continuing the chat's backend session with the agent's resume flag
 * while its config is unchanged and its last run did not crash.
 */
import type { AcpRunResult } from '../agents/acp-session.js';
import { buildAgentEnv } from '../agents/agent-env.js';
import { runHeadlessTask } from '../agents/headless-run.js';
import { canResumeHeadless, reportsSessionUsageTotals } from '../agents/headless-specs.js';
import type { AgentLaunchSpec } from '../agents/launch-specs.js';
import { type AgentSession, continuableSessionId, recordBackendUsageTotals } from '../db/agent-sessions.js';
import type { Task } from '../db/rows.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import type { PermissionPolicy } from '../services/permissions.js';
import { agentProcessRecorder } from './agent-process-recorder.js';
import type { TaskRunContext } from './dispatcher.js';

export interface HeadlessTurnInput {
  task: Task;
  spec: AgentLaunchSpec;
  /** The session's worktree. */
  cwd: string;
  /** The chat's session row as it was before this task: its backend session may continue. */
  previous: AgentSession | null;
  configHash: string;
  permissions: PermissionPolicy;
  /** the worktree's port block (worktree-setup.ts) */
  portEnv: Readonly<Record<string, string>>;
}

export interface HeadlessTurnResult {
  run?: AcpRunResult;
  error?: unknown;
  /** The agent process failed: its session is not continued by the next task. */
  processLost: boolean;
}

/** A failed resume that printed nothing the parser understood: the agent no longer has the session. */
function resumeRefused(err: unknown): boolean {
  return isBoocoderError(err, 'E_AGENT_FAILED') && err.details?.events === 0;
}

/**
 * The run's own usage for an agent that reports its session's running totals: what it reported
 * minus the totals kept after the previous run of the same session; the new totals are kept.
 */
async function ownUsage(deps: Deps, i: HeadlessTurnInput, run: AcpRunResult, resumed: boolean) {
  const usage = run.usage;
  if (!usage || !reportsSessionUsageTotals(i.spec.name) || !run.agentSessionId) return run;
  const p = i.previous;
  const same = resumed && p?.agentSessionId === run.agentSessionId;
  const base = {
    input: same ? (p.backendInputTokens ?? 0) : 0,
    output: same ? (p.backendOutputTokens ?? 0) : 0,
  };
  await recordBackendUsageTotals(deps.db, i.task.chatId as string, i.spec.name, usage);
  return {
    ...run,
    usage: {
      ...usage,
      inputTokens: Math.max(0, usage.inputTokens - base.input),
      outputTokens: Math.max(0, usage.outputTokens - base.output),
    },
  };
}

/** `ctx`: the dispatcher holding the task's lease (owner) and the run's stop signal. */
export async function runHeadlessTurn(
  deps: Deps,
  ctx: TaskRunContext,
  i: HeadlessTurnInput,
): Promise<HeadlessTurnResult> {
  // A headless run has no channel to park a permission request on: the `ask` policy cannot hold.
  // new_task refuses the combination; this covers a policy changed after the task was queued.
  if (i.permissions === 'ask') {
    return {
      error: new BoocoderError(
        'E_INVALID_INPUT',
        'the headless execution path cannot ask for permissions; with the `ask` policy use execution_path "acp"',
      ),
      processLost: false,
    };
  }
  const logger = deps.logger.child({ taskId: i.task.id, agent: i.spec.name });
  const env = {
    ...buildAgentEnv({ spec: i.spec, home: deps.config.home, childEnv: deps.config.childEnv }),
    ...i.portEnv,
  };
  const turn = (resumeSessionId: string | undefined) =>
    runHeadlessTask({
      spec: i.spec,
      cwd: i.cwd,
      prompt: i.task.input,
      env,
      signal: ctx.signal,
      timeoutMs: deps.config.taskTimeoutMs,
      logger,
      onSpawn: agentProcessRecorder(deps, i.task.id, ctx.owner, logger),
      ...(i.task.model ? { model: i.task.model } : {}),
      ...(resumeSessionId ? { resumeSessionId } : {}),
    });
  const sessionId = canResumeHeadless(i.spec.name)
    ? continuableSessionId(i.previous, 'headless', i.configHash)
    : undefined;
  try {
    try {
      const run = await turn(sessionId);
      return { run: await ownUsage(deps, i, run, sessionId !== undefined), processLost: false };
    } catch (err) {
      // Its state was reset (or the session expired): start a new conversation instead.
      if (!sessionId || ctx.signal.aborted || !resumeRefused(err)) throw err;
      logger.info('headless resume refused; starting a new agent session');
      return { run: await ownUsage(deps, i, await turn(undefined), false), processLost: false };
    }
  } catch (error) {
    return { error, processLost: isBoocoderError(error, 'E_AGENT_FAILED') };
  }
}
