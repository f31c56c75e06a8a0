/** SQL for projects (a git repository), sessions (one worktree each) and chats (one context each). */
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export interface Project {
  id: string;
  rootPath: string;
  name: string;
  createdAt: Date;
  /** The machine whose disk holds the repository (machine-id.ts); null until adopted. */
  machineId: string | null;
  machineName: string | null;
}

export interface Session {
  id: string;
  projectId: string;
  title: string | null;
  createdAt: Date;
}

export interface Chat {
  id: string;
  sessionId: string;
  title: string | null;
  createdAt: Date;
}

/**
 * Registers a repository once; a second call with the same root returns the same project. With a
 * machine, a new project records it and a project not adopted yet is adopted; a project of
 * another machine is returned unchanged (the caller refuses it).
 */
export async function upsertProject(
  db: Queryable,
  rootPath: string,
  name: string,
  machine?: { id: string; name: string },
): Promise<Project> {
  const { rows } = await db.query(
    `INSERT INTO projects (root_path, name, machine_id, machine_name) VALUES ($1, $2, $3, $4)
     ON CONFLICT (root_path) DO UPDATE
       SET machine_id = COALESCE(projects.machine_id, EXCLUDED.machine_id),
           machine_name = CASE WHEN projects.machine_id IS NULL THEN EXCLUDED.machine_name ELSE projects.machine_name END
     RETURNING *`,
    [rootPath, name, machine?.id ?? null, machine?.name ?? null],
  );
  return toCamel<Project>(rows[0] as Record<string, unknown>);
}

/** The project registered for a repository root (a realpath), without registering one. */
export async function findProjectByRoot(db: Queryable, rootPath: string): Promise<Project | null> {
  const { rows } = await db.query('SELECT * FROM projects WHERE root_path = $1', [rootPath]);
  return rows[0] ? toCamel<Project>(rows[0]) : null;
}

/** Records the machine of a project not adopted yet; null when it was adopted meanwhile. */
export async function adoptProject(
  db: Queryable,
  id: string,
  machine: { id: string; name: string },
): Promise<Project | null> {
  const { rows } = await db.query(
    'UPDATE projects SET machine_id = $2, machine_name = $3 WHERE id = $1 AND machine_id IS NULL RETURNING *',
    [id, machine.id, machine.name],
  );
  return rows[0] ? toCamel<Project>(rows[0]) : null;
}

export async function listUnadoptedProjects(db: Queryable): Promise<Project[]> {
  const { rows } = await db.query('SELECT * FROM projects WHERE machine_id IS NULL ORDER BY created_at');
  return rows.map((r) => toCamel<Project>(r));
}

export async function findProject(db: Queryable, id: string): Promise<Project | null> {
  const { rows } = await db.query('SELECT * FROM projects WHERE id = $1', [id]);
  return rows[0] ? toCamel<Project>(rows[0]) : null;
}

export async function insertSession(
  db: Queryable,
  projectId: string,
  title: string | null,
): Promise<Session> {
  const { rows } = await db.query('INSERT INTO sessions (project_id, title) VALUES ($1, $2) RETURNING *', [
    projectId,
    title,
  ]);
  return toCamel<Session>(rows[0] as Record<string, unknown>);
}

export async function findSession(db: Queryable, id: string): Promise<Session | null> {
  const { rows } = await db.query('SELECT * FROM sessions WHERE id = $1', [id]);
  return rows[0] ? toCamel<Session>(rows[0]) : null;
}

export async function insertChat(db: Queryable, sessionId: string, title: string | null): Promise<Chat> {
  const { rows } = await db.query('INSERT INTO chats (session_id, title) VALUES ($1, $2) RETURNING *', [
    sessionId,
    title,
  ]);
  return toCamel<Chat>(rows[0] as Record<string, unknown>);
}

export async function findChat(db: Queryable, id: string): Promise<Chat | null> {
  const { rows } = await db.query('SELECT * FROM chats WHERE id = $1', [id]);
  return rows[0] ? toCamel<Chat>(rows[0]) : null;
}

export async function findProjectOfSession(db: Queryable, sessionId: string): Promise<Project | null> {
  const { rows } = await db.query(
    'SELECT p.* FROM sessions s JOIN projects p ON p.id = s.project_id WHERE s.id = $1',
    [sessionId],
  );
  return rows[0] ? toCamel<Project>(rows[0]) : null;
}

/** Serialises writers to one repository's working tree for the rest of the transaction. */
export async function lockProjectForWrite(db: Queryable, projectId: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`boocoder:apply:${projectId}`]);
}

/**
 * Serialises, across processes sharing one database, the git worktree changes (add, remove,
 * prune) in a project's repository for the rest of the transaction: git itself has no lock for
 * them, and a prune during another process's add breaks that add.
 */
export async function lockProjectWorktrees(db: Queryable, projectId: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`boocoder:worktrees:${projectId}`]);
}
