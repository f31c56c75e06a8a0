/** What an ACP session is opened with, what a turn is given, and what a turn returns. */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { Logger } from '../../log.js';
import type { PermissionAsker } from '../../permissions/responder.js';
import type { AgentInfo, AgentTurnResult, TurnStopReason, TurnUsage } from '../agent-backend.js';
import type { AgentEventSink } from '../agent-events.js';
import type { FirstStartRelease } from '../first-start-gate.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import type { SessionConfigChoice } from './session-config.js';
import type { AcpTurnRecord } from './turn-record.js';

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
  /** The chat's earlier session to continue with session/load (see session-start.ts). */
  resumeSessionId?: string | undefined;
  /** Given on session/new and session/load (see RunAcpTaskOptions.mcpServers). */
  mcpServers?: acp.McpServer[];
  killGraceMs?: number;
  maxOutputChars?: number;
}

export interface AcpPromptOptions {
  text: string;
  signal?: AbortSignal;
  timeoutMs: number;
  onUpdate?: (update: acp.SessionUpdate) => void;
  /** Hears the turn's updates and permission requests as transcript events. */
  onEvent?: AgentEventSink;
  /** Called with the turn's usage so far each time the agent reports some (budgets: task-budget.ts). */
  onUsage?: (usage: TurnUsage) => void;
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
  stopReason: TurnStopReason,
  agentSessionId: string | null,
  response: acp.PromptResponse | undefined,
  agentInfo: AgentInfo | undefined,
): AgentTurnResult {
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
