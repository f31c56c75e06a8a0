/**
 * The dispatcher's hot statements: claim pending tasks into the free slots, or record the tasks its
 * runners finished and claim into the slots that frees, each in one round trip. Every value is a
 * $n parameter.
 *
 * A claim takes the oldest pending tasks by seq, at most one per session (the earliest), skipping
 * sessions that have an active task. The candidates are the first claimable rows of the pending
 * index, so a claim stays index-driven however long the queue is. SKIP LOCKED lets racing
 * dispatchers pass over each other's candidates; a candidate whose session has an older pending
 * task (one another claim has locked) is left alone, or the session's tasks would run out of order;
 * and the unique index on a session's active task settles the rare race on one session (the loser's
 * whole statement, finishes included, gets 23505 and is sent again).
 *
 * Both are prepared statements on pg, so their plans are generic (LIMIT unknown, estimated at 10%
 * of the table). Two shapes keep those plans probing indexes: the claim finds its rows through
 * `id = ANY(ARRAY(...))`, not a join (which would hash a sequential scan of every task), and the
 * older-pending check keeps `OFFSET 0` (as an anti-join it would hash every pending task).
 */
import { TASKS_DONE_CHANNEL } from './channels.js';
import type { Queryable } from './db.js';
import { type Task, toCamel } from './rows.js';
import type { TaskOutcome } from './tasks.js';

/** A task this owner ran to its end, and the final state to record. */
export interface TaskFinish {
  id: string;
  outcome: TaskOutcome;
}

export interface FinishAndClaim {
  /** Recorded first; the slots of those this owner still held are free for the claim. */
  finishes: readonly TaskFinish[];
  /** False (shutdown) claims nothing, not even into the slots the finishes free. */
  claim: boolean;
  /** Free slots besides those the finishes free. */
  freeSlots: number;
  /**
   * Claims only tasks whose project lives on this machine (project-machine.ts): a dispatcher on
   * another machine sharing the database would run an agent in a same-named local folder. A
   * project no machine has adopted yet (its repository was found nowhere) is anyone's: its task
   * fails wherever the repository is missing, rather than waiting forever.
   */
  machineId?: string;
}

export interface ClaimedTasks {
  /** The finishes recorded: a task missing here was no longer this owner's. */
  finished: string[];
  /** In seq order. */
  tasks: Task[];
  /** As many candidates as slots were found: more may be claimable. */
  more: boolean;
}

const CLAIM_ONLY = `
  WITH candidates AS (
    SELECT t.id, t.session_id, t.seq FROM tasks t
     WHERE t.state = 'pending'
       AND NOT EXISTS (SELECT 1 FROM tasks a WHERE a.session_id = t.session_id AND a.state IN ('running', 'blocked'))
       AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = t.project_id
                                            AND (p.machine_id = $4 OR p.machine_id IS NULL)))
     ORDER BY t.seq LIMIT $3
     FOR UPDATE SKIP LOCKED)
  UPDATE tasks SET state = 'running', attempts = tasks.attempts + 1, lease_owner = $1,
         lease_expires_at = clock_timestamp() + make_interval(secs => $2::double precision / 1000),
         started_at = clock_timestamp(), ended_at = NULL, updated_at = clock_timestamp(),
         agent_pid = NULL, agent_pid_started = NULL, agent_host = NULL, agent_boot_id = NULL
   WHERE tasks.id = ANY (ARRAY(
           SELECT DISTINCT ON (c.session_id) c.id FROM candidates c
            WHERE NOT EXISTS (SELECT 1 FROM tasks o WHERE o.session_id = c.session_id
                                 AND o.state = 'pending' AND o.seq < c.seq OFFSET 0)
            ORDER BY c.session_id, c.seq))
  RETURNING tasks.*, (SELECT count(*) FROM candidates)::int AS claim_candidates`;

/**
 * The finishes first. A session whose task is finished here is free for the claim: the statement's
 * snapshot still sees that task running, so it is excluded by id. The LIMIT counts only the finishes
 * that succeeded: a finish refused (lease lost) frees no slot.
 */
const FINISH_AND_CLAIM = `
  WITH finished AS (
    UPDATE tasks SET state = f.state, output_summary = f.output_summary, cost_tokens = f.cost_tokens,
           error_code = f.error_code, last_error = f.last_error, ended_at = clock_timestamp(),
           lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
      FROM unnest($5::uuid[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[])
           AS f(id, state, output_summary, cost_tokens, error_code, last_error)
     WHERE tasks.id = f.id AND tasks.lease_owner = $1 AND tasks.state IN ('running', 'blocked')
    RETURNING tasks.id, pg_notify($11, tasks.id::text)),
  claim_limit AS (SELECT CASE WHEN $4 THEN $3 + (SELECT count(*) FROM finished) ELSE 0 END AS n),
  candidates AS (
    SELECT t.id, t.session_id, t.seq FROM tasks t
     WHERE t.state = 'pending'
       AND NOT EXISTS (SELECT 1 FROM tasks a WHERE a.session_id = t.session_id
                          AND a.state IN ('running', 'blocked') AND a.id NOT IN (SELECT id FROM finished))
       AND ($12::text IS NULL OR EXISTS (SELECT 1 FROM projects p WHERE p.id = t.project_id
                                             AND (p.machine_id = $12 OR p.machine_id IS NULL)))
     ORDER BY t.seq LIMIT (SELECT n FROM claim_limit)
     FOR UPDATE SKIP LOCKED),
  claimed AS (
    UPDATE tasks SET state = 'running', attempts = tasks.attempts + 1, lease_owner = $1,
           lease_expires_at = clock_timestamp() + make_interval(secs => $2::double precision / 1000),
           started_at = clock_timestamp(), ended_at = NULL, updated_at = clock_timestamp(),
           agent_pid = NULL, agent_pid_started = NULL, agent_host = NULL, agent_boot_id = NULL
     WHERE tasks.id = ANY (ARRAY(
             SELECT DISTINCT ON (c.session_id) c.id FROM candidates c
              WHERE NOT EXISTS (SELECT 1 FROM tasks o WHERE o.session_id = c.session_id
                                   AND o.state = 'pending' AND o.seq < c.seq OFFSET 0)
              ORDER BY c.session_id, c.seq))
    RETURNING tasks.*)
  SELECT s.finished_ids, s.claim_candidates, s.claim_limit, claimed.*
    FROM (SELECT ARRAY(SELECT id FROM finished) AS finished_ids,
                 (SELECT count(*) FROM candidates)::int AS claim_candidates,
                 (SELECT n FROM claim_limit)::int AS claim_limit) s
    LEFT JOIN claimed ON true`;

function tasksOf(rows: Record<string, unknown>[]): Task[] {
  return rows
    .filter((row) => row.id !== null)
    .map(({ finished_ids: _f, claim_candidates: _c, claim_limit: _l, ...task }) => toCamel<Task>(task))
    .sort((a, b) => a.seq - b.seq);
}

/** Claims up to `limit` pending tasks (see above). */
async function claimTasks(
  db: Queryable,
  owner: string,
  leaseMs: number,
  limit: number,
  machineId: string | undefined,
): Promise<ClaimedTasks> {
  if (limit < 1) return { finished: [], tasks: [], more: false };
  const { rows } = await db.query(CLAIM_ONLY, [owner, leaseMs, limit, machineId ?? null], {
    name: 'boocoder_claim_tasks',
  });
  return { finished: [], tasks: tasksOf(rows), more: Number(rows[0]?.claim_candidates ?? 0) >= limit };
}

/** Records the finishes and claims into the slots that are free then (see above), in one statement. */
export async function finishAndClaimTasks(
  db: Queryable,
  owner: string,
  leaseMs: number,
  r: FinishAndClaim,
): Promise<ClaimedTasks> {
  const f = r.finishes;
  if (f.length === 0) return claimTasks(db, owner, leaseMs, r.claim ? r.freeSlots : 0, r.machineId);
  const { rows } = await db.query(
    FINISH_AND_CLAIM,
    [
      owner,
      leaseMs,
      r.freeSlots,
      r.claim,
      f.map((x) => x.id),
      f.map((x) => x.outcome.state),
      f.map((x) => x.outcome.outputSummary),
      f.map((x) => x.outcome.costTokens),
      f.map((x) => x.outcome.errorCode),
      f.map((x) => x.outcome.lastError),
      TASKS_DONE_CHANNEL,
      r.machineId ?? null,
    ],
    { name: 'boocoder_finish_and_claim_tasks' },
  );
  const { finished_ids: finished, claim_candidates: candidates, claim_limit: limit } = rows[0] ?? {};
  return {
    finished: (finished as string[] | undefined) ?? [],
    tasks: tasksOf(rows),
    more: Number(limit) > 0 && Number(candidates) >= Number(limit),
  };
}
