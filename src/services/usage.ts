/** Usage use cases: tokens and cost per agent, model and day, summed from what tasks recorded. */
import { findProject, findProjectByRoot } from '../db/projects.js';
import { sumTaskUsage, type UsageRow } from '../db/task-usage.js';
import { BoocoderError } from '../errors.js';
import { resolveRepository } from '../worktrees/repository.js';
import type { Deps } from './deps.js';
import { isUuid } from './projects.js';

export const USAGE_GROUPS = ['agent', 'model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  /** A project id or a repository path; absent: every project. */
  project?: string;
  since?: Date;
  groupBy: readonly UsageGroup[];
  limit: number;
}

/** The project's id, or null when the repository was never registered (it then has no usage). */
async function projectIdOf(deps: Deps, project: string): Promise<string | null> {
  if (isUuid(project)) {
    if (!(await findProject(deps.db, project)))
      throw new BoocoderError('E_PROJECT_NOT_FOUND', `no project has id ${project}`);
    return project;
  }
  // A read must not register the repository as a project (resolveProject would).
  const repo = await resolveRepository(project);
  return (await findProjectByRoot(deps.db, repo.rootPath))?.id ?? null;
}

export async function getUsage(deps: Deps, q: UsageQuery): Promise<UsageRow[]> {
  const projectId = q.project === undefined ? null : await projectIdOf(deps, q.project);
  if (q.project !== undefined && projectId === null) return [];
  return sumTaskUsage(deps.db, {
    projectId,
    since: q.since ?? null,
    byAgent: q.groupBy.includes('agent'),
    byModel: q.groupBy.includes('model'),
    byDay: q.groupBy.includes('day'),
    limit: q.limit,
  });
}
