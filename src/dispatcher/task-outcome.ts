/** What a finished agent run means for its task, and what identifies the session config it ran with. */
import { createHash } from 'node:crypto';
import type { AgentTurnResult } from '../agents/agent-backend.js';
import type { AgentLaunchSpec } from '../agents/launch-specs.js';
import type { Task } from '../db/rows.js';
import type { TaskOutcome } from '../db/tasks.js';
import { isBoocoderError } from '../errors.js';
import type { StopReason } from './task-runner.js';

const SUMMARY_MAX = 16 * 1024;

/** The task's final state from the agent's run, its error and why the run was stopped. */
export function outcomeOf(
  run: AgentTurnResult | undefined,
  err: unknown,
  stop: StopReason | undefined,
  budgetOverrun?: string | null,
): TaskOutcome {
  const usage = run?.usage;
  const costTokens = usage ? usage.inputTokens + usage.outputTokens : null;
  const summary = run?.outputText ? run.outputText.slice(0, SUMMARY_MAX) : null;
  if (stop === 'budget') {
    return {
      state: 'failed',
      outputSummary: summary,
      costTokens,
      errorCode: 'E_BUDGET_EXCEEDED',
      lastError: `the task was stopped: ${budgetOverrun ?? 'it passed its budget'}; the changes it made so far are kept for review. Queue a follow-up with a larger max_cost or max_tokens to go on`,
    };
  }
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

/**
 * Fingerprints what a warm session was started with (the agent, how it is launched, the model,
 * mode, thought level and other options, and the worktree it works in): a task that differs in any
 * of them gets a fresh session.
 */
export function configHashOf(agent: string, spec: AgentLaunchSpec, task: Task, cwd: string): string {
  const features = Object.entries(task.featureValues ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const fingerprint = JSON.stringify([
    agent,
    spec.command,
    spec.args,
    spec.env,
    task.model,
    task.modeId,
    task.thinkingOptionId,
    features,
    cwd,
  ]);
  return createHash('sha256').update(fingerprint).digest('hex').slice(0, 32);
}
