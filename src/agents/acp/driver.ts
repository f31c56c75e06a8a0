/**
 * Runs one coding task through an agent's ACP server over stdio: spawn, initialize, session/new,
 * one session/prompt, then stop the agent's whole process group. Callers store the result.
 * The acp backend (backend.ts) opens its warm sessions through openGatedAcpSession.
 */
import { stat } from 'node:fs/promises';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PermissionAsker } from '../../permissions/responder.js';
import type { AgentTurnResult } from '../agent-backend.js';
import type { AgentEventSink } from '../agent-events.js';
import { enterFirstStart, type FirstStartRelease } from '../first-start-gate.js';
import { type AgentLaunchSpec, assertValidAgentName, isAcceptableCommand } from '../launch-specs.js';
import { openAcpSession } from './session.js';
import type { SessionConfigChoice } from './session-config.js';
import type { AcpPromptOptions } from './session-types.js';

/**
 * `model` (tasks.model, in the agent's own naming: "provider/model" for opencode), `mode`,
 * `thinking` and `features` are applied to the new session before the prompt (applySessionConfig);
 * an agent that does not offer one fails the run with E_INVALID_INPUT.
 */
export interface RunAcpTaskOptions extends SessionConfigChoice {
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
  /** See AcpPromptOptions.onEvent. */
  onEvent?: AgentEventSink;
  /** See AcpPromptOptions.onUsage. */
  onUsage?: AcpPromptOptions['onUsage'];
  /** See AcpPromptOptions.onPermissionRequest. */
  onPermissionRequest?: PermissionAsker;
  /** How long a cancelled prompt gets to end with stopReason cancelled before the group is killed. */
  cancelGraceMs?: number;
  /** SIGTERM-to-SIGKILL grace when stopping the process group at the end. */
  killGraceMs?: number;
  maxOutputChars?: number;
  /**
   * Called once the agent process runs, with its pid (the leader of its process group), before it
   * is sent anything: a caller that must be able to find the agent again (to kill it after a crash
   * of its own) records it here. A rejection stops the agent and fails the run.
   */
  onSpawn?: (pid: number) => void | Promise<void>;
  /** The chat's earlier session to continue (session/load) instead of starting a new one. */
  resumeSessionId?: string | undefined;
  /** MCP servers the agent connects to for this session (boocoder itself: src/subtasks/). */
  mcpServers?: acp.McpServer[];
}

async function assertDirectory(cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => undefined);
  // Without this, spawn reports a missing cwd as ENOENT, indistinguishable from a missing binary.
  if (!info?.isDirectory())
    throw new BoocoderError('E_INVALID_INPUT', 'the agent working directory does not exist');
}

/** Refuses a malformed spec or a missing working directory before anything is spawned. */
export async function assertLaunchable(spec: AgentLaunchSpec, cwd: string): Promise<void> {
  assertValidAgentName(spec.name);
  if (!isAcceptableCommand(spec.command)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${spec.name}": command must be a program name or absolute path`,
    );
  }
  await assertDirectory(cwd);
}

/** A run cancelled before the agent created a session. */
export function cancelledBeforeSession(): AgentTurnResult {
  return {
    stopReason: 'cancelled',
    agentSessionId: null,
    outputText: '',
    outputTruncated: false,
    updates: 0,
  };
}

/**
 * Opens a session of `spec` in `cwd` through the first-start gate (see first-start-gate.ts).
 * Undefined when `signal` aborted before the agent had a session.
 */
export async function openGatedAcpSession(
  options: Omit<
    RunAcpTaskOptions,
    'prompt' | 'onUpdate' | 'onEvent' | 'onUsage' | 'onPermissionRequest' | 'cancelGraceMs'
  >,
): ReturnType<typeof openAcpSession> {
  await assertLaunchable(options.spec, options.cwd);
  if (options.signal?.aborted) return undefined;
  const env = { ...options.env, ...options.spec.env };
  let release: FirstStartRelease;
  try {
    release = await enterFirstStart(env.HOME, options.signal);
  } catch {
    return undefined;
  }
  try {
    return await openAcpSession({ ...options, env, reachedSession: release });
  } finally {
    release(false);
  }
}

/** Runs `prompt` in a fresh ACP session of `spec` in `cwd`. See RunAcpTaskOptions. */
export async function runAcpTask(options: RunAcpTaskOptions): Promise<AgentTurnResult> {
  const session = await openGatedAcpSession(options);
  if (!session) return cancelledBeforeSession();
  try {
    return await session.prompt({
      text: options.prompt,
      ...(options.signal ? { signal: options.signal } : {}),
      timeoutMs: options.timeoutMs,
      ...(options.onUpdate ? { onUpdate: options.onUpdate } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.onUsage ? { onUsage: options.onUsage } : {}),
      ...(options.onPermissionRequest ? { onPermissionRequest: options.onPermissionRequest } : {}),
      ...(options.cancelGraceMs !== undefined ? { cancelGraceMs: options.cancelGraceMs } : {}),
    });
  } finally {
    await session.close();
  }
}
