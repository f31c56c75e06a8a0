/** SQL for arenas: one input queued for several contenders (tasks sharing arena_id), and the pick. */
import type { Queryable } from './db.js';
import { type Task, toCamel } from './rows.js';

export interface Arena {
  id: string;
  projectId: string;
  input: string;
  baseCommit: string;
  winnerTaskId: string | null;
  decidedAt: Date | null;
  createdAt: Date;
  seq: number;
}

export async function insertArena(
  db: Queryable,
  a: { projectId: string; input: string; baseCommit: string },
): Promise<Arena> {
  const { rows } = await db.query(
    'INSERT INTO arenas (project_id, input, base_commit) VALUES ($1, $2, $3) RETURNING *',
    [a.projectId, a.input, a.baseCommit],
  );
  return toCamel<Arena>(rows[0] as Record<string, unknown>);
}

export async function findArena(db: Queryable, id: string): Promise<Arena | null> {
  const { rows } = await db.query('SELECT * FROM arenas WHERE id = $1', [id]);
  return rows[0] ? toCamel<Arena>(rows[0]) : null;
}

export interface ArenaFilter {
  projectId?: string;
  afterSeq: number;
  limit: number;
}

/** Arenas with how many contenders each has and how many are still queued or running. */
export async function listArenas(
  db: Queryable,
  f: ArenaFilter,
): Promise<(Arena & { contenders: number; open: number })[]> {
  const { rows } = await db.query(
    `SELECT a.*,
            (SELECT count(*)::int FROM tasks t WHERE t.arena_id = a.id) AS contenders,
            (SELECT count(*)::int FROM tasks t WHERE t.arena_id = a.id
                AND t.state IN ('pending', 'running', 'blocked')) AS open
       FROM arenas a
      WHERE ($1::uuid IS NULL OR a.project_id = $1) AND a.seq > $2
      ORDER BY a.seq LIMIT $3`,
    [f.projectId ?? null, f.afterSeq, f.limit],
  );
  return rows.map((r) => toCamel<Arena & { contenders: number; open: number }>(r));
}

export async function listContenders(db: Queryable, arenaId: string): Promise<Task[]> {
  const { rows } = await db.query('SELECT * FROM tasks WHERE arena_id = $1 ORDER BY seq', [arenaId]);
  return rows.map((r) => toCamel<Task>(r));
}

/**
 * Records the pick unless one is recorded already (two decisions at once: only one wins this
 * statement). winnerTaskId null is "none of them". False when the arena was already decided.
 */
export async function claimArenaDecision(
  db: Queryable,
  arenaId: string,
  winnerTaskId: string | null,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE arenas SET winner_task_id = $2, decided_at = clock_timestamp() WHERE id = $1 AND decided_at IS NULL`,
    [arenaId, winnerTaskId],
  );
  return rowCount > 0;
}

/** Takes a claimed decision back (its changes could not be applied): the arena can be decided again. */
export async function releaseArenaDecision(db: Queryable, arenaId: string): Promise<void> {
  await db.query('UPDATE arenas SET winner_task_id = NULL, decided_at = NULL WHERE id = $1', [arenaId]);
}

/** Per contender: its agent session's usage (a contender has a chat of its own, so it is the task's). */
export async function contenderUsage(
  db: Queryable,
  arenaId: string,
): Promise<{ taskId: string; inputTokens: number; outputTokens: number; cost: number }[]> {
  const { rows } = await db.query(
    `SELECT t.id AS task_id, coalesce(sum(s.input_tokens), 0)::bigint AS input_tokens,
            coalesce(sum(s.output_tokens), 0)::bigint AS output_tokens, coalesce(sum(s.cost), 0)::float8 AS cost
       FROM tasks t LEFT JOIN agent_sessions s ON s.chat_id = t.chat_id
      WHERE t.arena_id = $1 GROUP BY t.id`,
    [arenaId],
  );
  return rows.map((r) => {
    const u = toCamel<{ taskId: string; inputTokens: unknown; outputTokens: unknown; cost: unknown }>(r);
    return {
      taskId: u.taskId,
      inputTokens: Number(u.inputTokens),
      outputTokens: Number(u.outputTokens),
      cost: Number(u.cost),
    };
  });
}

export interface ArenaChange {
  id: string;
  taskId: string;
  status: string;
  diff: string;
}

/** Every change the arena's contenders produced, in capture order. */
export async function listArenaChanges(db: Queryable, arenaId: string): Promise<ArenaChange[]> {
  const { rows } = await db.query(
    `SELECT c.id, c.task_id, c.status, c.diff FROM pending_changes c JOIN tasks t ON t.id = c.task_id
      WHERE t.arena_id = $1 ORDER BY c.seq`,
    [arenaId],
  );
  return rows.map((r) => toCamel<ArenaChange>(r));
}
