/** SQL for agent_sessions: one backend session per (chat, agent), with usage summed onto it. */
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export type AgentSessionStatus = 'idle' | 'active' | 'crashed' | 'closed';

export interface AgentSession {
  chatId: string;
  agent: string;
  sessionId: string | null;
  /**
   * The execution path that runs the chat's session, by its name, except `acp_warm` for `acp` (the
   * seed's name for a warm ACP session; see sql/0007_execution_paths.sql).
   */
  backend: 'opencode_server' | 'acp_warm' | 'pty' | 'qwen' | 'native';
  agentSessionId: string | null;
  serverPort: number | null;
  status: AgentSessionStatus;
  lastActiveAt: Date | null;
  createdAt: Date;
  configHash: string | null;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  worktreeId: string | null;
  /** The backend session's own running totals, for agents that report those (codex headless). */
  backendInputTokens: number | null;
  backendOutputTokens: number | null;
}

/**
 * The chat's earlier backend session that a task may continue (ACP session/load, opencode serve's
 * session, a headless resume flag): run on the same backend with the same config hash, and not
 * crashed (a crash starts the chat fresh).
 */
export function continuableSessionId(
  previous: AgentSession | null,
  backend: AgentSession['backend'],
  configHash: string,
): string | undefined {
  const usable = previous?.backend === backend && previous.configHash === configHash;
  return usable && previous.status !== 'crashed' ? (previous.agentSessionId ?? undefined) : undefined;
}

export interface AgentSessionKey {
  chatId: string;
  agent: string;
  sessionId: string;
  worktreeId: string | null;
  backend: AgentSession['backend'];
}

export async function findAgentSession(
  db: Queryable,
  chatId: string,
  agent: string,
): Promise<AgentSession | null> {
  const { rows } = await db.query('SELECT * FROM agent_sessions WHERE chat_id = $1 AND agent = $2', [
    chatId,
    agent,
  ]);
  return rows[0] ? toCamel<AgentSession>(rows[0]) : null;
}

/** Marks the (chat, agent) session active for a run, creating it on first use. */
export async function markAgentSessionActive(
  db: Queryable,
  k: AgentSessionKey,
  configHash: string,
): Promise<void> {
  await db.query(
    `INSERT INTO agent_sessions (chat_id, agent, session_id, worktree_id, backend, status, last_active_at, config_hash)
     VALUES ($1, $2, $3, $4, $5, 'active', clock_timestamp(), $6)
     ON CONFLICT (chat_id, agent) DO UPDATE SET status = 'active', last_active_at = clock_timestamp(),
        worktree_id = EXCLUDED.worktree_id, backend = EXCLUDED.backend, config_hash = EXCLUDED.config_hash`,
    [k.chatId, k.agent, k.sessionId, k.worktreeId, k.backend, configHash],
  );
}

export interface AgentRunUsage {
  agentSessionId: string | null;
  status: AgentSessionStatus;
  inputTokens: number;
  outputTokens: number;
  cost: number;
}

/** Ends a run: new status, and the run's usage added to the running totals. */
export async function recordAgentSessionRun(
  db: Queryable,
  chatId: string,
  agent: string,
  u: AgentRunUsage,
): Promise<void> {
  await db.query(
    `UPDATE agent_sessions SET status = $3, agent_session_id = coalesce($4, agent_session_id),
            input_tokens = input_tokens + $5, output_tokens = output_tokens + $6, cost = cost + $7,
            last_active_at = clock_timestamp()
      WHERE chat_id = $1 AND agent = $2`,
    [chatId, agent, u.status, u.agentSessionId, u.inputTokens, u.outputTokens, u.cost],
  );
}

/**
 * Keeps the running token totals the agent reported for its backend session (codex `exec --json`
 * reports the thread's totals): the next resumed run subtracts them to count only its own usage.
 */
export async function recordBackendUsageTotals(
  db: Queryable,
  chatId: string,
  agent: string,
  totals: { inputTokens: number; outputTokens: number },
): Promise<void> {
  await db.query(
    `UPDATE agent_sessions SET backend_input_tokens = $3, backend_output_tokens = $4
      WHERE chat_id = $1 AND agent = $2`,
    [chatId, agent, totals.inputTokens, totals.outputTokens],
  );
}

/**
 * Records that the idle warm session of (chat, agent) ended: 'closed' after its idle time,
 * 'crashed' when its process died. A session a task already marked active is left alone.
 */
export async function markIdleAgentSessionEnded(
  db: Queryable,
  chatId: string,
  agent: string,
  status: 'closed' | 'crashed',
): Promise<void> {
  await db.query(
    `UPDATE agent_sessions SET status = $3 WHERE chat_id = $1 AND agent = $2 AND status = 'idle'`,
    [chatId, agent, status],
  );
}

export async function listAgentSessions(
  db: Queryable,
  sessionId: string,
  limit: number,
): Promise<AgentSession[]> {
  const { rows } = await db.query(
    `SELECT * FROM agent_sessions WHERE session_id = $1 ORDER BY created_at, agent LIMIT $2`,
    [sessionId, limit],
  );
  return rows.map((r) => toCamel<AgentSession>(r));
}
