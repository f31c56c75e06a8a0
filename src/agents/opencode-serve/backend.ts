/**
 * The opencode serve backend: a turn on the process's shared `opencode serve` (holder.ts), in the
 * session's worktree, continuing the chat's opencode session while its config is unchanged.
 */
import type { Config } from '../../config.js';
import { continuableSessionId } from '../../db/agent-sessions.js';
import { BoocoderError, isBoocoderError } from '../../errors.js';
import type { AgentBackend, AgentTurnResult, BackendSession, TurnRequest } from '../agent-backend.js';
import type { OpencodeServerHolder } from './holder.js';
import type { OpencodeServer } from './server.js';

export interface OpencodeServeBackendOptions {
  config: Pick<Config, 'taskTimeoutMs'>;
  /** The shared server, started on the first turn that needs it. */
  holder?: OpencodeServerHolder | undefined;
}

export class OpencodeServeBackend implements AgentBackend {
  readonly sessionBackend = 'opencode_server';

  constructor(private readonly o: OpencodeServeBackendOptions) {}

  /** The server is started (or found) by the turn: a failure to start it is the turn's error. */
  async openSession(r: TurnRequest): Promise<BackendSession> {
    return new ServeTaskSession(this.o, r);
  }

  async close(): Promise<void> {
    await this.o.holder?.close();
  }
}

class ServeTaskSession implements BackendSession {
  private server: OpencodeServer | undefined;

  constructor(
    private readonly o: OpencodeServeBackendOptions,
    private readonly i: TurnRequest,
  ) {}

  /** The shared server died during the task. */
  get processLost(): boolean {
    return this.server !== undefined && !this.server.alive;
  }

  /** The server is shared by every chat: it keeps running. */
  async release(): Promise<void> {}

  async runTurn(): Promise<AgentTurnResult> {
    const { i } = this;
    const holder = this.o.holder;
    if (!holder) throw new BoocoderError('E_INTERNAL', 'no opencode server in this process');
    const server = await holder.get(i.spec);
    this.server = server;
    const turn = (sessionId: string | undefined) =>
      server.runTurn({
        directory: i.cwd,
        prompt: i.task.input,
        signal: i.signal,
        timeoutMs: this.o.config.taskTimeoutMs,
        ...(sessionId ? { sessionId } : {}),
        ...(i.task.model ? { model: i.task.model } : {}),
        ...(i.asker ? { asker: i.asker } : {}),
      });
    const sessionId = continuableSessionId(i.previous, 'opencode_server', i.configHash);
    try {
      return await turn(sessionId);
    } catch (err) {
      // The server no longer knows the session (its state was reset): start a new conversation.
      if (!sessionId || !isBoocoderError(err, 'E_INVALID_INPUT')) throw err;
      return await turn(undefined);
    }
  }
}
