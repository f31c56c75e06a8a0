/**
 * A project lives on one machine: only servers on that machine work on its repository. Several
 * machines may share one database, and a path names a folder on one disk only: the same path on
 * another machine is another folder, maybe another repository, maybe none.
 */
import type { Queryable } from '../db/db.js';
import { adoptProject, findProject, listUnadoptedProjects, type Project } from '../db/projects.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Machine } from '../machine-id.js';
import { resolveRepository } from '../worktrees/repository.js';

export function projectOnOtherMachine(project: Project): BoocoderError {
  const where = `${project.machineName ?? 'unknown host'} (machine id ${project.machineId?.slice(0, 12)})`;
  return new BoocoderError(
    'E_PROJECT_ON_OTHER_MACHINE',
    `project ${project.name} lives on machine ${where}, not on this one; use a boocoder server on that machine for it`,
    { machineId: project.machineId, machineName: project.machineName },
  );
}

/** True when the project's repository is at its recorded path here (a git top level). */
async function foundHere(project: Project): Promise<boolean> {
  try {
    return (await resolveRepository(project.rootPath)).rootPath === project.rootPath;
  } catch {
    return false;
  }
}

/**
 * The project, when it lives on this machine; a project not adopted yet is adopted when its
 * repository is at the recorded path here. Anything else refuses with E_PROJECT_ON_OTHER_MACHINE
 * before any local path is touched: writing another machine's changes into a same-named local
 * folder would damage whatever is there.
 */
export async function assertProjectHere(db: Queryable, project: Project, machine: Machine): Promise<Project> {
  if (project.machineId === machine.id) return project;
  if (project.machineId === null && (await foundHere(project))) {
    const adopted = await adoptProject(db, project.id, machine);
    if (adopted) return adopted;
    // Adopted by another server in the meantime: judge the project as it is now.
    const now = await findProject(db, project.id);
    if (now?.machineId === machine.id) return now;
    if (now) throw projectOnOtherMachine(now);
  }
  throw projectOnOtherMachine(project);
}

/** At start-up: adopts every project not adopted yet whose repository is at its path here. */
export async function adoptLocalProjects(db: Queryable, machine: Machine, logger: Logger): Promise<number> {
  let adopted = 0;
  for (const project of await listUnadoptedProjects(db)) {
    if (!(await foundHere(project))) continue;
    if (await adoptProject(db, project.id, machine)) adopted++;
  }
  if (adopted > 0) logger.info('adopted projects found on this machine', { adopted });
  return adopted;
}
