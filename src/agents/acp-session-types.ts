/** What an ACP session is opened with, what a turn is given, and what a turn returns. */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { Logger } from '../log.js';
import type { AgentInfo, PermissionAsker } from './acp-client-policy.js';
import type { SessionConfigChoice } from './acp-session-config.js';
import type { AcpTurnRecord, AcpUsage } from './acp-turn-record.js';
import type { FirstStartRelease } from './first-start-gate.js';
import type { AgentLaunchSpec } from './launch-specs.js';

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

export interface OpenAcpSessionOptions extends SessionConfigChoice {
  spec: AgentLaunchSpec;
  /** The worktree the agent works in (checked by the caller). */
  cwd: string;
  /** The agent's full environment (spec.env already applied). */
  env: Readonly<Record<string, string>>;
  /** Aborting while the session is being set up kills the agent; open then resolves undefined. */
  signal?: AbortSignal;
  /** Budget for the setup (initialize, session/new, session configuration). */
  timeoutMs: number;
  logger: Logger;
  /** See RunAcpTaskOptions.onSpawn. */
  onSpawn?: (pid: number) => void | Promise<void>;
  /** Called once the agent has a session: see first-start-gate.ts. */
  reachedSession?: FirstStartRelease;
  /** The chat's earlier session to continue with session/load (see acp-session-start.ts). */
  resumeSessionId?: string | undefined;
  killGraceMs?: number;
  maxOutputChars?: number;
}

export interface AcpPromptOptions {
  text: string;
  signal?: AbortSignal;
  timeoutMs: number;
  onUpdate?: (update: acp.SessionUpdate) => void;
  /** Called with the turn's usage so far each time the agent reports some (budgets: task-budget.ts). */
  onUsage?: (usage: AcpUsage) => void;
  /**
   * Who answers the turn's permission requests that the default policy allows (the `ask` policy);
   * without it they are allowed once. Requests the policy refuses never reach it.
   */
  onPermissionRequest?: PermissionAsker;
  /** How long a cancelled prompt gets to end with stopReason cancelled before the group is killed. */
  cancelGraceMs?: number;
}

export function resultOf(
  record: AcpTurnRecord,
  stopReason: AcpStopReason,
  agentSessionId: string | null,
  response: acp.PromptResponse | undefined,
  agentInfo: AgentInfo | undefined,
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
