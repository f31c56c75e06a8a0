/**
 * Runs one coding task through an agent's ACP server over stdio: spawn, initialize, session/new,
 * one session/prompt, then stop the agent's whole process group. Callers store the result.
 */
import type { ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import * as acp from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { type AgentInfo, agentInfoOf, choosePermission, INITIALIZE_PARAMS } from './acp-client-policy.js';
import { planModelSelection } from './acp-session-config.js';

export { choosePermission };

import { AcpTurnRecord, type AcpUsage, DEFAULT_MAX_OUTPUT_CHARS } from './acp-turn-record.js';
import {
  agentExited,
  agentRejected,
  agentSpawnFailed,
  agentTimedOut,
  type ExitStatus,
} from './agent-errors.js';
import { TailBuffer } from './capped-output.js';
import { enterFirstStart, type FirstStartRelease } from './first-start-gate.js';
import { type AgentLaunchSpec, assertValidAgentName, isAcceptableCommand } from './launch-specs.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from './process-group.js';

export type AcpStopReason = acp.StopReason;

export interface AcpRunResult {
  stopReason: AcpStopReason;
  /** Null only when the run was cancelled before the agent created a session. */
  agentSessionId: string | null;
  /** The agent's message chunks joined, capped at maxOutputChars. */
  outputText: string;
  outputTruncated: boolean;
  /** How many session/update notifications arrived. */
  updates: number;
  usage?: AcpUsage;
  agentInfo?: AgentInfo;
}

export interface RunAcpTaskOptions {
  spec: AgentLaunchSpec;
  /** The worktree the agent works in; it must exist. */
  cwd: string;
  prompt: string;
  /** The agent's environment; spec.env is applied on top of it. */
  env: Readonly<Record<string, string>>;
  signal?: AbortSignal;
  timeoutMs: number;
  logger: Logger;
  onUpdate?: (update: acp.SessionUpdate) => void;
  /** How long a cancelled prompt gets to end with stopReason cancelled before the group is killed. */
  cancelGraceMs?: number;
  /** SIGTERM-to-SIGKILL grace when stopping the process group at the end. */
  killGraceMs?: number;
  maxOutputChars?: number;
  /**
   * The model to run on (tasks.model), in the agent's own naming ("provider/model" for opencode).
   * Selected through the session's `model` config option (or `session/set_model` on older agents)
   * before the prompt; an agent that does not offer it fails the run with E_INVALID_INPUT.
   */
  model?: string;
  /**
   * Called once the agent process runs, with its pid (the leader of its process group), before it
   * is sent anything: a caller that must be able to find the agent again (to kill it after a crash
   * of its own) records it here. A rejection stops the agent and fails the run.
   */
  onSpawn?: (pid: number) => void | Promise<void>;
}

const STDERR_TAIL_BYTES = 16 * 1024;
/** After the connection drops, how long to wait for the exit status that explains it. */
const EXIT_STATUS_WAIT_MS = 1000;

type Interruption = 'abort' | 'timeout';

class Interrupted extends Error {
  constructor(readonly reason: Interruption) {
    super(reason);
  }
}

async function assertDirectory(cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => undefined);
  // Without this, spawn reports a missing cwd as ENOENT, indistinguishable from a missing binary.
  if (!info?.isDirectory())
    throw new BoocoderError('E_INVALID_INPUT', 'the agent working directory does not exist');
}

/** Runs `prompt` in a fresh ACP session of `spec` in `cwd`. See RunAcpTaskOptions. */
export async function runAcpTask(options: RunAcpTaskOptions): Promise<AcpRunResult> {
  const { spec, cwd } = options;
  assertValidAgentName(spec.name);
  if (!isAcceptableCommand(spec.command)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${spec.name}": command must be a program name or absolute path`,
    );
  }
  await assertDirectory(cwd);
  const record = new AcpTurnRecord(options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS);
  const cancelledEarly = () => resultOf(record, 'cancelled', null, undefined, undefined);
  if (options.signal?.aborted) return cancelledEarly();
  const env = { ...options.env, ...spec.env };
  let releaseFirstStart: FirstStartRelease;
  try {
    releaseFirstStart = await enterFirstStart(env.HOME, options.signal);
  } catch {
    return cancelledEarly();
  }
  try {
    return await runInProcess(options, env, record, releaseFirstStart);
  } finally {
    releaseFirstStart(false);
  }
}

async function runInProcess(
  options: RunAcpTaskOptions,
  env: Record<string, string>,
  record: AcpTurnRecord,
  reachedSession: FirstStartRelease,
): Promise<AcpRunResult> {
  const { spec, logger } = options;
  const child = spawnInProcessGroup(spec.command, spec.args, {
    cwd: options.cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = new TailBuffer(STDERR_TAIL_BYTES);
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  // EPIPE after the agent died is reported through its exit status instead.
  child.stdin?.on('error', () => {});
  const exited = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (exitCode, signal) => resolve({ exitCode, signal })),
  );
  try {
    await waitForSpawn(child);
  } catch (err) {
    throw agentSpawnFailed(spec, err);
  }
  const log = logger.child({ agent: spec.name, pid: child.pid });
  log.debug('agent started');
  try {
    if (options.onSpawn && child.pid !== undefined) await options.onSpawn(child.pid);
    return await driveSession(child, options, record, { stderr, exited, log, reachedSession });
  } finally {
    child.stdin?.end();
    const outcome = await terminateProcessGroup(child, { graceMs: options.killGraceMs ?? 2000 });
    if (outcome === 'lingering') log.warn('agent processes survived SIGKILL', { pgid: child.pid });
    log.debug('agent stopped', { outcome });
  }
}

function resultOf(
  record: AcpTurnRecord,
  stopReason: AcpStopReason,
  agentSessionId: string | null,
  response: acp.PromptResponse | undefined,
  agentInfo: AcpRunResult['agentInfo'],
): AcpRunResult {
  const usage = record.usage(response);
  return {
    stopReason,
    agentSessionId,
    outputText: record.outputText,
    outputTruncated: record.outputTruncated,
    updates: record.updates,
    ...(usage ? { usage } : {}),
    ...(agentInfo ? { agentInfo } : {}),
  };
}

interface SessionContext {
  stderr: TailBuffer;
  exited: Promise<ExitStatus>;
  log: Logger;
  /** Called once the agent has a session: see first-start-gate.ts. */
  reachedSession: FirstStartRelease;
}

async function driveSession(
  child: ChildProcess,
  options: RunAcpTaskOptions,
  record: AcpTurnRecord,
  ctx: SessionContext,
): Promise<AcpRunResult> {
  const { spec } = options;
  const { log } = ctx;
  const stop = new AbortController();
  let interruption: Interruption | undefined;
  const interrupt = (reason: Interruption) => {
    interruption ??= reason;
    stop.abort();
  };
  const onAbort = () => interrupt('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // setTimeout fires at once for delays past 2^31-1 ms: clamp instead of timing out immediately.
  const timer = setTimeout(() => interrupt('timeout'), Math.min(options.timeoutMs, 2 ** 31 - 1));
  const stopped = new Promise<never>((_, reject) =>
    stop.signal.addEventListener('abort', () => reject(new Interrupted(interruption ?? 'abort')), {
      once: true,
    }),
  );
  stopped.catch(() => {});
  const untilStopped = <T>(work: Promise<T>): Promise<T> => Promise.race([work, stopped]);

  const app = acp
    .client({ name: 'boocoder' })
    .onRequest(acp.methods.client.session.requestPermission, ({ params }) => choosePermission(params.options))
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      record.add(params.update);
      try {
        options.onUpdate?.(params.update);
      } catch (err) {
        log.warn('onUpdate callback failed', { err });
      }
    });
  const connection = app.connect(
    acp.ndJsonStream(
      Writable.toWeb(child.stdin as NonNullable<typeof child.stdin>) as WritableStream<Uint8Array>,
      Readable.toWeb(child.stdout as NonNullable<typeof child.stdout>) as ReadableStream<Uint8Array>,
    ),
  );
  const agent = connection.agent;
  let phase = 'initialize';
  let sessionId: string | null = null;
  let agentInfo: AcpRunResult['agentInfo'];
  try {
    const init = await untilStopped<acp.InitializeResponse>(
      agent.request(acp.methods.agent.initialize, INITIALIZE_PARAMS),
    );
    agentInfo = agentInfoOf(init);
    phase = 'session/new';
    const session = await untilStopped(
      agent.request(acp.methods.agent.session.new, { cwd: options.cwd, mcpServers: [] }),
    );
    sessionId = session.sessionId;
    ctx.reachedSession(true);
    if (options.model !== undefined) {
      phase = 'model selection';
      const selection = planModelSelection(spec.name, session, options.model);
      if (selection) await untilStopped(agent.request(selection.method, selection.params));
      log.debug('model selected', { model: options.model, changed: selection !== null });
    }
    phase = 'session/prompt';
    const prompt = agent.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: options.prompt }],
    });
    prompt.catch(() => {});
    try {
      const response = await untilStopped(prompt);
      return resultOf(record, response.stopReason, sessionId, response, agentInfo);
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      const response = await cancelPrompt(agent, sessionId, prompt, options.cancelGraceMs ?? 5000);
      log.info('agent prompt cancelled', {
        reason: err.reason,
        endedCleanly: response?.stopReason === 'cancelled',
      });
      if (err.reason === 'timeout') throw agentTimedOut(spec, options.timeoutMs, response !== undefined);
      return resultOf(record, 'cancelled', sessionId, response, agentInfo);
    }
  } catch (err) {
    if (err instanceof BoocoderError) throw err;
    if (err instanceof Interrupted) {
      if (err.reason === 'timeout') throw agentTimedOut(spec, options.timeoutMs, false);
      return resultOf(record, 'cancelled', sessionId, undefined, agentInfo);
    }
    if (err instanceof acp.RequestError && !connection.signal.aborted) throw agentRejected(spec, phase, err);
    throw await agentDied(spec, phase, ctx, err);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    connection.close();
  }
}

/** session/cancel, then up to `graceMs` for the prompt to end; undefined if it did not. */
async function cancelPrompt(
  agent: acp.ClientContext,
  sessionId: string,
  prompt: Promise<acp.PromptResponse>,
  graceMs: number,
): Promise<acp.PromptResponse | undefined> {
  agent.notify(acp.methods.agent.session.cancel, { sessionId }).catch(() => {});
  const grace = new AbortController();
  try {
    return await Promise.race([
      prompt.catch(() => undefined),
      delay(graceMs, undefined, { signal: grace.signal }).catch(() => undefined),
    ]);
  } finally {
    grace.abort();
  }
}

async function agentDied(spec: AgentLaunchSpec, phase: string, ctx: SessionContext, err: unknown) {
  const grace = new AbortController();
  const status = await Promise.race([
    ctx.exited,
    delay(EXIT_STATUS_WAIT_MS, undefined, { signal: grace.signal }).catch(() => undefined),
  ]);
  grace.abort();
  ctx.log.warn('agent connection lost', { phase, ...status, err });
  return agentExited(spec, phase, status, ctx.stderr.lastLines(), err);
}
