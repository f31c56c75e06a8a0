/** Tasks straight into the database for the chaos suite, and the checks every chaos test makes. */
import type { Db, Queryable } from '../../src/db/db.js';
import { insertChat, insertSession, upsertProject } from '../../src/db/projects.js';
import { insertTask } from '../../src/db/task-inserts.js';

export interface SessionIds {
  projectId: string;
  sessionId: string;
  chatId: string;
}

export async function insertSessionFor(db: Queryable, rootPath: string): Promise<SessionIds> {
  const project = await upsertProject(db, rootPath, 'chaos');
  const session = await insertSession(db, project.id, null);
  const chat = await insertChat(db, session.id, null);
  return { projectId: project.id, sessionId: session.id, chatId: chat.id };
}

export async function queueAgentTask(
  db: Queryable,
  ids: SessionIds,
  input: string,
  maxAttempts = 3,
): Promise<string> {
  const task = await insertTask(db, {
    ...ids,
    input,
    agent: 'fixture',
    model: null,
    parentTaskId: null,
    maxAttempts,
  });
  return task.id;
}

export interface TaskRowLite {
  id: string;
  state: string;
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  error_code: string | null;
  agent_pid: number | null;
  worktree_path: string | null;
}

export async function readTask(db: Queryable, id: string): Promise<TaskRowLite> {
  const { rows } = await db.query<TaskRowLite>(
    `SELECT id, state, attempts, lease_owner, lease_expires_at, error_code, agent_pid, worktree_path
       FROM tasks WHERE id = $1`,
    [id],
  );
  if (!rows[0]) throw new Error(`task ${id} is gone`);
  return rows[0];
}

/** The changes recorded for a task, as `operation:path`, sorted. */
export async function changesOf(db: Queryable, taskId: string): Promise<string[]> {
  const { rows } = await db.query<{ operation: string; file_path: string }>(
    'SELECT operation, file_path FROM pending_changes WHERE task_id = $1 ORDER BY file_path',
    [taskId],
  );
  return rows.map((r) => `${r.operation}:${r.file_path}`);
}

/**
 * Many no-op tasks spread over `sessions` sessions of one project, inserted in one statement (the
 * insert trigger still sends one NOTIFY per row; PostgreSQL folds identical ones per transaction).
 */
export async function insertNoopTasks(
  db: Db,
  projectId: string,
  sessionIds: string[],
  count: number,
  label: string,
): Promise<void> {
  await db.query(
    `INSERT INTO tasks (project_id, session_id, input, agent, execution_path, max_attempts)
     SELECT $1, ($2::uuid[])[1 + (g % array_length($2::uuid[], 1))], $4 || ' ' || g, 'noop', 'acp', 3
       FROM generate_series(0, $3::int - 1) g`,
    [projectId, sessionIds, count, label],
  );
}

/** Sessions (with no chat) for the no-op tasks. */
export async function insertSessions(db: Queryable, projectId: string, count: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO sessions (project_id) SELECT $1 FROM generate_series(1, $2::int) RETURNING id',
    [projectId, count],
  );
  return rows.map((r) => r.id);
}
