/** Resolves the `project` a client names (a repository path or a project id) to a registered project. */
import { basename, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Queryable } from '../db/db.js';
import { findProject, findProjectByRoot, type Project, upsertProject } from '../db/projects.js';
import { BoocoderError } from '../errors.js';
import type { Machine } from '../machine-id.js';
import { requireProjectFolder, resolveRepository } from '../worktrees/repository.js';
import { projectOnOtherMachine } from './project-machine.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** The first file:// root a client offers, as a path; roots of other schemes are ignored. */
export function pathFromRoots(roots: readonly { uri: string }[]): string | undefined {
  for (const r of roots) {
    if (!r.uri.startsWith('file://')) continue;
    try {
      return fileURLToPath(r.uri);
    } catch {
      // A malformed root URI is the client's problem; try the next one.
    }
  }
  return undefined;
}

/**
 * A path names a repository on this machine: a project recorded for that path on another machine
 * is refused before the local path is looked at (project-machine.ts). An id may name a project
 * anywhere: its tasks run on its own machine.
 */
export async function resolveProject(db: Queryable, project: string, machine: Machine): Promise<Project> {
  if (isUuid(project)) {
    const found = await findProject(db, project);
    if (!found)
      throw new BoocoderError('E_PROJECT_NOT_FOUND', `no project has id ${project}; pass a repository path`);
    // Another machine's project: its folder is there, not here (the same path here is another
    // folder, not to be looked at); its own machine's dispatcher runs the task.
    if (found.machineId !== null && found.machineId !== machine.id) return found;
    // Queued anyway, the task would fail in the dispatcher a moment later: refuse it now.
    await requireProjectFolder(found.rootPath, 'no task was queued');
    return found;
  }
  if (!isAbsolute(project)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'project must be an absolute path to a git repository or a project id',
    );
  }
  const known = await findProjectByRoot(db, project);
  if (known?.machineId && known.machineId !== machine.id) throw projectOnOtherMachine(known);
  const repo = await resolveRepository(project);
  const registered = await upsertProject(db, repo.rootPath, basename(repo.rootPath), machine);
  if (registered.machineId !== machine.id) throw projectOnOtherMachine(registered);
  return registered;
}
