/**
 * A task on the `native` execution path: a turn on the process's shared `opencode serve`, in the
 * session's worktree, continuing the chat's opencode session while its config is unchanged.
 */
import type { PermissionAsker } from '../agents/acp-client-policy.js';
import type { AcpRunResult } from '../agents/acp-driver.js';
import type { AgentEventSink } from '../agents/agent-events.js';
import type { AgentLaunchSpec } from '../agents/launch-specs.js';
import { type AgentSession, continuableSessionId } from '../db/agent-sessions.js';
import { BoocoderError, isBoocoderError } from '../errors.js';
import type { Deps } from '../services/deps.js';

export interface ServeTurnInput {
  spec: AgentLaunchSpec;
  cwd: string;
  prompt: string;
  model?: string;
  signal: AbortSignal;
  /** The chat's session row as it was before this task: its opencode session may continue. */
  previous: AgentSession | null;
  configHash: string;
  /** The `ask` policy's gate: the turn's permission requests go to a human (services/permissions.ts). */
  asker?: PermissionAsker;
  /** Hears the turn's parts and permission requests as transcript events. */
  onEvent?: AgentEventSink;
}

export interface ServeTurn {
  run?: AcpRunResult;
  error?: unknown;
  /** The shared server died during the task. */
  processLost: boolean;
}

export async function runOpencodeServeTurn(deps: Deps, i: ServeTurnInput): Promise<ServeTurn> {
  const holder = deps.opencodeServer;
  if (!holder) {
    return {
      error: new BoocoderError('E_INTERNAL', 'no opencode server in this process'),
      processLost: false,
    };
  }
  let server: Awaited<ReturnType<typeof holder.get>> | undefined;
  try {
    server = await holder.get(i.spec);
    const turn = (sessionId: string | undefined) =>
      (server as NonNullable<typeof server>).runTurn({
        directory: i.cwd,
        prompt: i.prompt,
        signal: i.signal,
        timeoutMs: deps.config.taskTimeoutMs,
        ...(sessionId ? { sessionId } : {}),
        ...(i.model ? { model: i.model } : {}),
        ...(i.asker ? { asker: i.asker } : {}),
        ...(i.onEvent ? { onEvent: i.onEvent } : {}),
      });
    const sessionId = continuableSessionId(i.previous, 'opencode_server', i.configHash);
    try {
      return { run: await turn(sessionId), processLost: false };
    } catch (err) {
      // The server no longer knows the session (its state was reset): start a new conversation.
      if (!sessionId || !isBoocoderError(err, 'E_INVALID_INPUT')) throw err;
      return { run: await turn(undefined), processLost: false };
    }
  } catch (error) {
    return { error, processLost: server !== undefined && !server.alive };
  }
}
