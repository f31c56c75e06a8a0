/** Resolves the `project` a client names (a repository path or a project id) to a registered project. */
import { basename, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Queryable } from '../db/db.js';
import { findProject, type Project, upsertProject } from '../db/projects.js';
import { BoocoderError } from '../errors.js';
import { requireProjectFolder } from '../worktrees/repository.js';
import { resolveRepository } from '../worktrees/worktrees.js';

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

export async function resolveProject(db: Queryable, project: string): Promise<Project> {
  if (isUuid(project)) {
    const found = await findProject(db, project);
    if (!found)
      throw new BoocoderError('E_PROJECT_NOT_FOUND', `no project has id ${project}; pass a repository path`);
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
  const repo = await resolveRepository(project);
  return upsertProject(db, repo.rootPath, basename(repo.rootPath));
}
