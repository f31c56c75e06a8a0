/**
 * Makes a session's worktree ready to work in before its agent starts (docs/worktree-setup.md):
 * its own port block, the project's ignored files copied in, and the project's setup command run
 * (the agent waits for it). Done once per worktree; a failure fails the task and the next run of
 * the session tries again.
 */
import { join } from 'node:path';
import { buildAgentEnv } from '../agents/agent-env.js';
import type { AgentLaunchSpec } from '../agents/launch-specs.js';
import type { Config } from '../config.js';
import { findArena } from '../db/arenas.js';
import type { Db } from '../db/db.js';
import type { Project } from '../db/projects.js';
import type { Task } from '../db/rows.js';
import { setTaskWorktree } from '../db/tasks.js';
import {
  assignWorktreePorts,
  markWorktreeReady,
  PORT_BLOCK_SIZE,
  worktreeReadiness,
} from '../db/worktree-ports.js';
import { BoocoderError } from '../errors.js';
import { resolveProjectSettings, untrustedCommandError } from '../projects/settings.js';
import { resetWorktree } from '../worktrees/reset.js';
import { copyIncludedFiles } from '../worktrees/worktree-files.js';
import { runProjectCommand } from './project-command.js';
import { type PreparedWorktree, prepareSessionWorktree } from './session-worktree.js';

/**
 * What the worktree's agent (and its setup and check) get in their environment: PORT and the
 * inclusive block PORT_RANGE_START..PORT_RANGE_END. Not BOOCODER_*: those are boocoder's own and
 * never reach an agent.
 */
export function worktreePortEnv(portBase: number): Record<string, string> {
  return {
    PORT: String(portBase),
    PORT_RANGE_START: String(portBase),
    PORT_RANGE_END: String(portBase + PORT_BLOCK_SIZE - 1),
  };
}

/** What preparing a worktree needs of the process. */
export interface WorktreeSetupDeps {
  db: Db;
  config: Config;
}

export interface ReadyWorktreeInput {
  rootPath: string;
  wt: PreparedWorktree;
  /** the environment the task's agent gets (setup runs under the same rules) */
  agentEnv: Readonly<Record<string, string>>;
  signal: AbortSignal;
}

/** Prepares the worktree unless it is ready; returns its port environment. */
export async function makeWorktreeReady(
  deps: WorktreeSetupDeps,
  i: ReadyWorktreeInput,
): Promise<Record<string, string>> {
  const known = await worktreeReadiness(deps.db, i.wt.id);
  const portEnv = worktreePortEnv(known.portBase ?? (await assignWorktreePorts(deps.db, i.wt.id)));
  if (known.ready) return portEnv;
  const settings = await resolveProjectSettings(deps.config, i.rootPath);
  const setup = settings.setup;
  // Refused before anything is copied or run: an untrusted repository command fails the task.
  if (setup && !setup.trusted) throw untrustedCommandError(i.rootPath, 'setup');
  await copyIncludedFiles(i.rootPath, i.wt.path, settings.copy);
  if (setup) {
    const r = await runProjectCommand({
      command: setup.command,
      cwd: i.wt.path,
      env: { ...i.agentEnv, ...portEnv },
      timeoutMs: settings.setupTimeoutMs,
      signal: i.signal,
    });
    if (i.signal.aborted)
      throw new BoocoderError('E_CANCELLED', 'the task was stopped during its setup command');
    if (r.outcome !== 'passed') {
      const how = r.outcome === 'timeout' ? 'timed out' : `failed (exit code ${r.exitCode ?? 'none'})`;
      throw new BoocoderError(
        'E_SETUP_FAILED',
        `the project's setup command ${how}; fix it and queue the task again. Its last output:\n${r.outputTail}`,
      );
    }
    // Only what git ignores (installed dependencies, build output) is kept from the setup: files
    // it created or edited that git tracks would otherwise show up as the agent's changes.
    await resetWorktree({ repoPath: i.rootPath, worktreePath: i.wt.path, commit: i.wt.headCommit });
  }
  await markWorktreeReady(deps.db, i.wt.id);
  return portEnv;
}

export interface PreparedTaskWorktree {
  wt: PreparedWorktree;
  /** the agent's environment with the worktree's ports */
  env: Record<string, string>;
  portEnv: Record<string, string>;
}

/** The task's session worktree, at its recorded head, ready for the agent (see the module comment). */
export async function prepareTaskWorktree(
  deps: WorktreeSetupDeps,
  i: { task: Task; project: Project; spec: AgentLaunchSpec; signal: AbortSignal },
): Promise<PreparedTaskWorktree> {
  const { task, project } = i;
  // An arena's contenders all start from the commit pinned when it was created.
  const startCommit = task.arenaId ? (await findArena(deps.db, task.arenaId))?.baseCommit : undefined;
  const root = join(deps.config.home, 'worktrees');
  const wt = await prepareSessionWorktree(
    deps.db,
    project,
    task.sessionId as string,
    root,
    deps.config.machine.id,
    startCommit,
  );
  await setTaskWorktree(deps.db, task.id, wt.path);
  const agentEnv = buildAgentEnv({ spec: i.spec, home: deps.config.home, childEnv: deps.config.childEnv });
  const portEnv = await makeWorktreeReady(deps, {
    rootPath: project.rootPath,
    wt,
    agentEnv,
    signal: i.signal,
  });
  return { wt, env: { ...agentEnv, ...portEnv }, portEnv };
}
