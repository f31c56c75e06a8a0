/**
 * SQL for the inbox: what needs a human or the calling agent. Blocked tasks (with their pending
 * permission requests), failed tasks (with their error) and finished tasks whose changes are still
 * pending review; newest first. Every value is a $n parameter.
 */
import type { Queryable } from './db.js';
import { type Task, toCamel } from './rows.js';

export interface InboxRequest {
  requestId: string;
  title: string | null;
  kind: string | null;
  options: unknown;
}

export interface InboxRow {
  task: Task;
  unreviewedChanges: number;
  requests: InboxRequest[];
}

export async function listInboxTasks(
  db: Queryable,
  f: { projectId?: string | undefined; limit: number },
): Promise<InboxRow[]> {
  const { rows } = await db.query(
    `SELECT t.*,
            (SELECT count(*)::int FROM pending_changes c WHERE c.task_id = t.id AND c.status = 'pending')
              AS inbox_unreviewed,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('requestId', r.id, 'title', r.title, 'kind', r.kind,
                                                          'options', r.options) ORDER BY r.seq), '[]'::jsonb)
               FROM permission_requests r WHERE r.task_id = t.id AND r.state = 'pending') AS inbox_requests
       FROM tasks t
      WHERE ($1::uuid IS NULL OR t.project_id = $1)
        AND (t.state IN ('blocked', 'failed')
             OR (t.state IN ('completed', 'cancelled')
                 AND t.id IN (SELECT c.task_id FROM pending_changes c WHERE c.status = 'pending')))
      ORDER BY t.updated_at DESC, t.seq DESC
      LIMIT $2`,
    [f.projectId ?? null, f.limit],
  );
  return rows.map((row) => {
    const { inbox_unreviewed: unreviewed, inbox_requests: requests, ...task } = row;
    const parsed = typeof requests === 'string' ? JSON.parse(requests) : requests;
    return {
      task: toCamel<Task>(task),
      unreviewedChanges: Number(unreviewed),
      requests: Array.isArray(parsed) ? (parsed as InboxRequest[]) : [],
    };
  });
}
