/**
 * SQL for task_events, a task's transcript (see src/transcripts/). A batch is written in one
 * statement: its rows, the cut of the transcript's middle once it outgrew its bound, and the task's
 * "now doing" line. Every value is a $n parameter.
 */
import { TASK_ACTIVITY_CHANNEL } from './channels.js';
import type { Queryable } from './db.js';

export interface TaskEventRow {
  seq: number;
  kind: string;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface TaskEventBatch {
  events: TaskEventRow[];
  /** Rows with seq in (from, to] are deleted: the middle of a transcript past its bound. */
  cut?: { from: number; to: number };
  /** The task's new "now doing" line, when it changed. */
  nowDoing?: string;
}

/** The highest seq stored for the task (0 for none): a new attempt's recorder continues after it. */
export async function lastTaskEventSeq(db: Queryable, taskId: string): Promise<number> {
  const { rows } = await db.query<{ seq: number | null }>(
    'SELECT max(seq) AS seq FROM task_events WHERE task_id = $1',
    [taskId],
  );
  return Number(rows[0]?.seq ?? 0);
}

export async function writeTaskEvents(db: Queryable, taskId: string, b: TaskEventBatch): Promise<void> {
  const events = b.events.map((e) => ({
    seq: e.seq,
    kind: e.kind,
    data: e.data,
    at: e.createdAt.toISOString(),
  }));
  // Data-modifying CTEs all run, in one round trip; the cut never covers this batch's own rows
  // (the recorder leaves those out), so it does not matter that it cannot see them.
  await db.query(
    `WITH added AS (
       INSERT INTO task_events (task_id, seq, kind, data, created_at)
       SELECT $1, e.seq, e.kind, e.data, e.at
         FROM jsonb_to_recordset($2::jsonb) AS e(seq integer, kind text, data jsonb, at timestamptz)
       ON CONFLICT (task_id, seq) DO NOTHING
     ), cut AS (
       DELETE FROM task_events WHERE task_id = $1 AND $3::integer IS NOT NULL AND seq > $3 AND seq <= $4
     )
     UPDATE tasks SET now_doing = $5 WHERE id = $1 AND $5::text IS NOT NULL`,
    [taskId, JSON.stringify(events), b.cut?.from ?? null, b.cut?.to ?? null, b.nowDoing ?? null],
  );
}

export interface TaskEventPage {
  events: TaskEventRow[];
  /** The task's highest seq, whether or not this page reached it. */
  lastSeq: number;
}

export async function listTaskEvents(
  db: Queryable,
  taskId: string,
  afterSeq: number,
  limit: number,
): Promise<TaskEventPage> {
  const { rows } = await db.query<{
    seq: number;
    kind: string;
    data: Record<string, unknown>;
    created_at: Date;
    last_seq: number | null;
  }>(
    `SELECT e.seq, e.kind, e.data, e.created_at,
            (SELECT max(seq) FROM task_events WHERE task_id = $1) AS last_seq
       FROM task_events e WHERE e.task_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`,
    [taskId, afterSeq, limit],
  );
  const events = rows.map((r) => ({
    seq: Number(r.seq),
    kind: r.kind,
    data: typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, unknown>) : r.data,
    createdAt: new Date(r.created_at),
  }));
  if (rows.length > 0) return { events, lastSeq: Number(rows[0]?.last_seq ?? 0) };
  return { events, lastSeq: await lastTaskEventSeq(db, taskId) };
}

/** A task's run begins: its "now doing" line is reset to `nowDoing` and the start is announced. */
export async function markTaskStarted(db: Queryable, taskId: string, nowDoing: string): Promise<void> {
  await db.query(
    `WITH started AS (UPDATE tasks SET now_doing = $2 WHERE id = $1 RETURNING id)
     SELECT pg_notify($3, 'started:' || id::text) FROM started`,
    [taskId, nowDoing, TASK_ACTIVITY_CHANNEL],
  );
}

/** Announces that changes of these tasks were reviewed (applied, rejected or reverted). */
export async function announceChangesReviewed(db: Queryable, taskIds: (string | null)[]): Promise<void> {
  const ids = [...new Set(taskIds.filter((id): id is string => id !== null))];
  if (ids.length === 0) return;
  await db.query("SELECT pg_notify($1, 'reviewed:' || id) FROM jsonb_array_elements_text($2::jsonb) AS id", [
    TASK_ACTIVITY_CHANNEL,
    JSON.stringify(ids),
  ]);
}
