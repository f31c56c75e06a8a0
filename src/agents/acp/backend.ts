/**
 * The `acp` backend: the agent as an ACP server over stdio. A chat's session stays warm between its
 * tasks (warm-sessions.ts) while its config is unchanged; when no live process holds it any more (a
 * restart, an idle close) the chat's earlier session is continued with ACP session/load.
 */
import type { Config } from '../../config.js';
import { continuableSessionId } from '../../db/agent-sessions.js';
import type { SubtaskScopes } from '../../subtasks/scope-tokens.js';
import type { AgentBackend, AgentTurnResult, BackendSession, TurnRequest } from '../agent-backend.js';
import { buildAgentEnv } from '../agent-env.js';
import { boocoderMcpServers, retargetChatToken } from './boocoder-mcp.js';
import { cancelledBeforeSession, openGatedAcpSession } from './driver.js';
import type { WarmLease, WarmSessions } from './warm-sessions.js';

export interface AcpBackendOptions {
  config: Pick<Config, 'home' | 'childEnv' | 'taskTimeoutMs'>;
  /** Live sessions kept between a chat's tasks; without it every task starts its agent and stops it after. */
  warmSessions?: WarmSessions | undefined;
  /** Scoped credentials for boocoder as the agent's MCP server (sub-tasks); without it, none. */
  subtaskScopes?: SubtaskScopes | undefined;
}

/** A session that never started: the task was stopped before the agent had one. */
const cancelledSession: BackendSession = {
  runTurn: async () => cancelledBeforeSession(),
  processLost: false,
  release: async () => {},
};

export class AcpBackend implements AgentBackend {
  readonly sessionBackend = 'acp_warm';

  constructor(private readonly o: AcpBackendOptions) {}

  async openSession(r: TurnRequest): Promise<BackendSession> {
    const base = this.openOptions(r);
    // A new session gets a fresh token (minted only then); a warm one keeps its token, now for this task.
    retargetChatToken(this.o.subtaskScopes, r.task);
    const open = () =>
      openGatedAcpSession({
        ...base,
        mcpServers: boocoderMcpServers(this.o.subtaskScopes, r.spec.name, r.task),
      });
    const pool = this.o.warmSessions;
    const key = { chatId: r.task.chatId as string, agent: r.spec.name };
    if (!pool) {
      const session = await open();
      if (!session) return cancelledSession;
      return new AcpTaskSession(r, this.o.config.taskTimeoutMs, { session, reused: false }, () =>
        session.close(),
      );
    }
    const lease = await pool.acquire(key, r.configHash, open);
    if (!lease) return cancelledSession;
    return new AcpTaskSession(r, this.o.config.taskTimeoutMs, lease, () => pool.release(key, lease.session));
  }

  async close(): Promise<void> {
    await this.o.warmSessions?.closeAll();
  }

  private openOptions(r: TurnRequest): Parameters<typeof openGatedAcpSession>[0] {
    const { task, spec } = r;
    return {
      spec,
      cwd: r.cwd,
      model: task.model ?? undefined,
      mode: task.modeId ?? undefined,
      thinking: task.thinkingOptionId ?? undefined,
      features: task.featureValues ?? undefined,
      // When no live process holds it any more (a restart, an idle close): ACP session/load.
      resumeSessionId: continuableSessionId(r.previous, 'acp_warm', r.configHash),
      env: {
        ...buildAgentEnv({ spec, home: this.o.config.home, childEnv: this.o.config.childEnv }),
        ...r.worktreeEnv,
      },
      signal: r.signal,
      timeoutMs: this.o.config.taskTimeoutMs,
      logger: r.logger,
      onSpawn: r.onSpawn,
    };
  }
}

/** One task's use of a live ACP session (new, or warm since the chat's last task). */
class AcpTaskSession implements BackendSession {
  private lost = false;

  constructor(
    private readonly r: TurnRequest,
    private readonly timeoutMs: number,
    private readonly lease: WarmLease,
    readonly release: () => Promise<void>,
  ) {}

  get processLost(): boolean {
    return this.lost;
  }

  async runTurn(): Promise<AgentTurnResult> {
    const { r } = this;
    const { session } = this.lease;
    try {
      // A reused process was recorded for an earlier task: record it again for this one.
      if (this.lease.reused) await r.onSpawn(session.pid);
      return await session.prompt({
        text: r.task.input,
        signal: r.signal,
        timeoutMs: this.timeoutMs,
        ...(r.asker ? { onPermissionRequest: r.asker } : {}),
        ...(r.onEvent ? { onEvent: r.onEvent } : {}),
        ...(r.onUsage ? { onUsage: r.onUsage } : {}),
      });
    } finally {
      // Judged before a cancel's close below: that close is ours, not a crash.
      this.lost = !session.alive;
      // A client's cancel stops the agent too (after session/cancel let it end its turn): whoever
      // cancels expects nothing of that agent to keep running, and the next task starts it fresh.
      if (r.signal.reason === 'cancel') await session.close();
    }
  }
}
