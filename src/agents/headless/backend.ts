/**
 * The `pty` (and `qwen`) backend: one headless run of the agent's CLI per turn in the session's worktree
 * (run.ts), continuing the chat's backend session with the agent's resume flag while its config
 * is unchanged and its last run did not crash. Nothing stays running between turns.
 */
import type { Config } from '../../config.js';
import { continuableSessionId, recordBackendUsageTotals } from '../../db/agent-sessions.js';
import type { Db } from '../../db/db.js';
import { BoocoderError, isBoocoderError } from '../../errors.js';
import type { AgentBackend, AgentTurnResult, BackendSession, TurnRequest } from '../agent-backend.js';
import { buildAgentEnv } from '../agent-env.js';
import { runHeadlessTask } from './run.js';
import { canResumeHeadless, reportsSessionUsageTotals } from './specs.js';

export interface HeadlessBackendOptions {
  db: Db;
  config: Pick<Config, 'home' | 'childEnv' | 'taskTimeoutMs'>;
  /** The execution path it serves: `pty`, or `qwen` for Qwen Code's own path (the same runs). */
  path: 'pty' | 'qwen';
}

/** A failed resume that printed nothing the parser understood: the agent no longer has the session. */
function resumeRefused(err: unknown): boolean {
  return isBoocoderError(err, 'E_AGENT_FAILED') && err.details?.events === 0;
}

export class HeadlessBackend implements AgentBackend {
  readonly sessionBackend: 'pty' | 'qwen';

  constructor(private readonly o: HeadlessBackendOptions) {
    this.sessionBackend = o.path;
  }

  async openSession(r: TurnRequest): Promise<BackendSession> {
    return new HeadlessTaskSession(this.o, r);
  }

  /** Each turn's process group is stopped when its turn ends: nothing is left to close. */
  async close(): Promise<void> {}
}

class HeadlessTaskSession implements BackendSession {
  processLost = false;

  constructor(
    private readonly o: HeadlessBackendOptions,
    private readonly i: TurnRequest,
  ) {}

  async release(): Promise<void> {}

  async runTurn(): Promise<AgentTurnResult> {
    const { i } = this;
    // A headless run has no channel to park a permission request on: the `ask` policy cannot hold.
    // new_task refuses the combination; this covers a policy changed after the task was queued.
    if (i.asker) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        'the headless execution path cannot ask for permissions; with the `ask` policy use execution_path "acp"',
      );
    }
    const { logger } = i;
    const env = {
      ...buildAgentEnv({ spec: i.spec, home: this.o.config.home, childEnv: this.o.config.childEnv }),
      ...i.worktreeEnv,
    };
    const turn = (resumeSessionId: string | undefined) =>
      runHeadlessTask({
        spec: i.spec,
        cwd: i.cwd,
        prompt: i.task.input,
        env,
        signal: i.signal,
        timeoutMs: this.o.config.taskTimeoutMs,
        logger,
        onSpawn: i.onSpawn,
        ...(i.task.model ? { model: i.task.model } : {}),
        ...(resumeSessionId ? { resumeSessionId } : {}),
      });
    const sessionId = canResumeHeadless(i.spec.name)
      ? continuableSessionId(i.previous, this.o.path, i.configHash)
      : undefined;
    try {
      try {
        const run = await turn(sessionId);
        return await this.ownUsage(run, sessionId !== undefined);
      } catch (err) {
        // Its state was reset (or the session expired): start a new conversation instead.
        if (!sessionId || i.signal.aborted || !resumeRefused(err)) throw err;
        logger.info('headless resume refused; starting a new agent session');
        return await this.ownUsage(await turn(undefined), false);
      }
    } catch (error) {
      // The agent process failed: its session is not continued by the next task.
      this.processLost = isBoocoderError(error, 'E_AGENT_FAILED');
      throw error;
    }
  }

  /**
   * The run's own usage for an agent that reports its session's running totals: what it reported
   * minus the totals kept after the previous run of the same session; the new totals are kept.
   */
  private async ownUsage(run: AgentTurnResult, resumed: boolean): Promise<AgentTurnResult> {
    const { i } = this;
    const usage = run.usage;
    if (!usage || !reportsSessionUsageTotals(i.spec.name) || !run.agentSessionId) return run;
    const p = i.previous;
    const same = resumed && p?.agentSessionId === run.agentSessionId;
    const base = {
      input: same ? (p.backendInputTokens ?? 0) : 0,
      output: same ? (p.backendOutputTokens ?? 0) : 0,
    };
    await recordBackendUsageTotals(this.o.db, i.task.chatId as string, i.spec.name, usage);
    return {
      ...run,
      usage: {
        ...usage,
        inputTokens: Math.max(0, usage.inputTokens - base.input),
        outputTokens: Math.max(0, usage.outputTokens - base.output),
      },
    };
  }
}
