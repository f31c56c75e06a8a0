/**
 * The one interface every execution path implements, one folder each: `acp/` (an agent's ACP
 * server over stdio, kept warm per chat), `headless/` (one headless CLI run per turn),
 * `opencode-serve/` (turns on opencode's shared `opencode serve`), and `native/` (boocoder's own
 * agent, running its model loop in this process). The dispatcher (dispatcher/run-task.ts) only
 * talks to this interface: it opens the chat's session on the task's backend, runs one turn,
 * records the result, then releases the session.
 *
 * Cancelling a turn is aborting `TurnRequest.signal`: the dispatcher's four stop reasons (a client's
 * cancel, a lost lease, shutdown, the task timeout) already travel on that one signal, with the
 * reason as `signal.reason`; a backend ends its turn as `cancelled` when it sees it.
 */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { AgentSession } from '../db/agent-sessions.js';
import type { Task } from '../db/rows.js';
import type { Logger } from '../log.js';
import type { PermissionAsker } from '../permissions/responder.js';
import type { AgentEventSink } from './agent-events.js';
import type { AgentLaunchSpec } from './launch-specs.js';

/** Why a turn ended, in ACP's words (the richest of the wire formats; the others map onto it). */
export type TurnStopReason = acp.StopReason;

/** A turn's token counts and cost, as boocoder stores them on the task and the chat's session. */
export interface TurnUsage {
  /** Prompt tokens, cache reads and cache writes included. */
  inputTokens: number;
  /** Completion tokens, reasoning ("thought") tokens included. */
  outputTokens: number;
  /** Cumulative session cost as the agent reported it, when it does. */
  cost?: number;
  currency?: string;
}

/** What an agent says about itself (ACP agentInfo, a CLI's version). */
export interface AgentInfo {
  name: string;
  title?: string;
  version: string;
}

/** What one turn produced, whatever the backend. */
export interface AgentTurnResult {
  stopReason: TurnStopReason;
  /** The backend's own session id (continued by the chat's next task); null when cancelled before one existed. */
  agentSessionId: string | null;
  /** The agent's message text joined, capped at the backend's output limit. */
  outputText: string;
  outputTruncated: boolean;
  /** How many progress events (ACP session/update, JSON lines, server events) arrived. */
  updates: number;
  usage?: TurnUsage;
  agentInfo?: AgentInfo;
}

/** The output cap of a turn's text unless a backend is given another. */
export const DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024;

/** Everything a backend gets to run one task's turn. */
export interface TurnRequest {
  /** The claimed task: its prompt (input), model, mode, thought level, options and chat. */
  task: Task;
  spec: AgentLaunchSpec;
  /** The session's worktree: the only folder the agent works in. */
  cwd: string;
  /** The chat's agent_sessions row as it was before this task: a backend session it may continue. */
  previous: AgentSession | null;
  /** Fingerprint of the session's config (dispatcher/task-outcome.ts): another one means a fresh session. */
  configHash: string;
  /** Aborted to stop the turn; `signal.reason` says why (see the file comment). */
  signal: AbortSignal;
  /**
   * Answers the permission requests the default policy allows when a human must decide (the `ask`
   * policy); absent under `auto`, where they are allowed once. Refused requests never reach it.
   */
  asker?: PermissionAsker;
  /**
   * Called with the pid of the agent's process-group leader before it is sent anything, so a
   * dispatcher that takes the lease over can kill it (orphaned-agents.ts). In-process backends
   * call it for each child process they start.
   */
  onSpawn: (pid: number) => Promise<void>;
  /** Hears the turn's activity as transcript events (agent-events.ts): the task's transcript. */
  onEvent?: AgentEventSink;
  logger: Logger;
  /**
   * The worktree's own variables (its port block: dispatcher/worktree-setup.ts), added to the
   * agent's environment by the backends that start a process per worktree.
   */
  worktreeEnv?: Readonly<Record<string, string>>;
  /**
   * Called with the turn's usage so far whenever the agent reports some mid-turn (budgets:
   * dispatcher/task-budget.ts). Only the acp backend reports during a turn; the others' usage
   * arrives in the turn's result.
   */
  onUsage?: (usage: TurnUsage) => void;
}

/** One execution path. */
export interface AgentBackend {
  /** The agent_sessions.backend value of the chat sessions it keeps. */
  readonly sessionBackend: AgentSession['backend'];
  /**
   * Starts the chat's session for this task, or takes the live one kept since the chat's last task
   * when its config is unchanged. Throws a BoocoderError when the agent cannot start; an
   * E_AGENT_FAILED then counts as a lost process.
   */
  openSession(request: TurnRequest): Promise<BackendSession>;
  /** Stops every session and process the backend keeps (the app's shutdown). */
  close(): Promise<void>;
}

/** A chat's session as one task uses it. */
export interface BackendSession {
  /** Runs the task's prompt to the end of the agent's turn; throws a BoocoderError when it fails. */
  runTurn(): Promise<AgentTurnResult>;
  /** True once the agent's process (or server) died during the task: the chat's next task starts afresh. */
  readonly processLost: boolean;
  /**
   * Ends the task's use of the session, once its result is recorded (an idle timer started
   * earlier could mark the session closed before the result marks it idle): a warm backend keeps
   * it for the chat's next task, the others stop it.
   */
  release(): Promise<void>;
}
