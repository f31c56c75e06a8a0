/**
 * Arena use cases (docs/arenas.md): queue one input for 2-8 contenders from one pinned commit,
 * read them side by side with a ranking, and pick a winner (its changes applied as one batch, all
 * or nothing, every other contender's rejected) or none.
 */
import { resolveLaunchSpec } from '../agents/launch-specs.js';
import * as arenas from '../db/arenas.js';
import type { Task } from '../db/rows.js';
import { type CheckOutcome, listTaskChecks, type TaskCheck } from '../db/task-checks.js';
import { countQueuedTasks } from '../db/tasks.js';
import { BoocoderError } from '../errors.js';
import { resolveRepository } from '../worktrees/repository.js';
import { refuseUnusableAgent } from './agents.js';
import { countDiffLines, rankContenders } from './arena-ranking.js';
import { actOnChanges } from './changes.js';
import type { Deps } from './deps.js';
import { chooseExecutionPath } from './execution-path.js';
import { pathFromRoots, resolveProject } from './projects.js';
import { FINAL_STATES, queueTask, waitForTask } from './tasks.js';

export const MIN_CONTENDERS = 2;
export const MAX_CONTENDERS = 8;

export interface Contender {
  agent?: string;
  model?: string;
  executionPath?: string;
}

export interface NewArenaInput {
  project?: string;
  input: string;
  contenders: readonly Contender[];
}

export async function newArena(
  deps: Deps,
  input: NewArenaInput,
  clientRoots: () => Promise<readonly { uri: string }[]>,
): Promise<{ arena: arenas.Arena; tasks: Task[] }> {
  const n = input.contenders.length;
  if (n < MIN_CONTENDERS || n > MAX_CONTENDERS) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `an arena has ${MIN_CONTENDERS} to ${MAX_CONTENDERS} contenders, not ${n}`,
    );
  }
  const projectRef = input.project ?? pathFromRoots(await clientRoots());
  if (!projectRef) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'project is required: pass a git repository path (the client offers no root)',
    );
  }
  // Every contender is checked before anything is queued: an arena is never left half-queued
  // because its third agent is misspelt.
  for (const c of input.contenders) {
    const agent = c.agent ?? deps.config.defaultAgent;
    chooseExecutionPath(deps.config, agent, c.executionPath);
    await refuseUnusableAgent(deps, resolveLaunchSpec(agent, deps.config.agents));
  }
  const project = await resolveProject(deps.db, projectRef, deps.config.machine);
  if ((await countQueuedTasks(deps.db, project.id)) + n > deps.config.maxQueuedPerProject) {
    throw new BoocoderError(
      'E_TOO_MANY_TASKS',
      `the project's queue has no room for ${n} more tasks (at most ${deps.config.maxQueuedPerProject}); wait for some to finish`,
    );
  }
  if (input.input.includes('\u0000')) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'input contains a NUL character (\\u0000), which cannot be stored',
    );
  }
  // Pinned now: every contender's worktree starts here, whatever the checkout does meanwhile.
  const { headCommit } = await resolveRepository(project.rootPath);
  const arena = await arenas.insertArena(deps.db, {
    projectId: project.id,
    input: input.input,
    baseCommit: headCommit,
  });
  const tasks: Task[] = [];
  for (const c of input.contenders) {
    const q = await queueTask(
      deps,
      {
        project: project.id,
        input: input.input,
        ...(c.agent ? { agent: c.agent } : {}),
        ...(c.model ? { model: c.model } : {}),
        ...(c.executionPath ? { executionPath: c.executionPath } : {}),
        arenaId: arena.id,
      },
      clientRoots,
    );
    tasks.push(q.task);
  }
  return { arena, tasks };
}

export type ArenaState = 'running' | 'finished' | 'decided';

export interface ContenderView {
  task: Task;
  rank: number;
  check: TaskCheck | null;
  filesChanged: number;
  linesAdded: number;
  linesRemoved: number;
  pendingChanges: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  durationMs: number | null;
}

export interface ArenaView {
  arena: arenas.Arena;
  state: ArenaState;
  /** best first: see arena-ranking.ts */
  contenders: ContenderView[];
}

const isOpen = (t: Task) => !FINAL_STATES.includes(t.state) || t.state === 'blocked';

async function findArenaOrThrow(deps: Deps, id: string): Promise<arenas.Arena> {
  const arena = await arenas.findArena(deps.db, id);
  if (!arena) throw new BoocoderError('E_ARENA_NOT_FOUND', `no arena has id ${id}`);
  return arena;
}

/**
 * The arena side by side, best first. With waitS, first waits (at most that long in all) for
 * every contender to finish.
 */
export async function getArena(
  deps: Deps,
  id: string,
  opts: { waitS?: number; signal?: AbortSignal } = {},
): Promise<ArenaView> {
  const arena = await findArenaOrThrow(deps, id);
  if (opts.waitS) {
    const deadline = Date.now() + opts.waitS * 1000;
    for (const t of await arenas.listContenders(deps.db, id)) {
      const left = (deadline - Date.now()) / 1000;
      if (left <= 0 || opts.signal?.aborted) break;
      await waitForTask(deps, t.id, left, opts.signal ? { signal: opts.signal } : {});
    }
  }
  const tasks = await arenas.listContenders(deps.db, id);
  const checks = new Map(
    (
      await listTaskChecks(
        deps.db,
        tasks.map((t) => t.id),
      )
    ).map((c) => [c.taskId, c]),
  );
  const usage = new Map((await arenas.contenderUsage(deps.db, id)).map((u) => [u.taskId, u]));
  const changes = await arenas.listArenaChanges(deps.db, id);
  const views = tasks.map((task): ContenderView => {
    const own = changes.filter((c) => c.taskId === task.id);
    const lines = own.map((c) => countDiffLines(c.diff));
    const u = usage.get(task.id);
    return {
      task,
      rank: 0,
      check: checks.get(task.id) ?? null,
      filesChanged: own.length,
      linesAdded: lines.reduce((s, l) => s + l.added, 0),
      linesRemoved: lines.reduce((s, l) => s + l.removed, 0),
      pendingChanges: own.filter((c) => c.status === 'pending').length,
      inputTokens: u?.inputTokens ?? 0,
      outputTokens: u?.outputTokens ?? 0,
      cost: u?.cost ?? 0,
      durationMs: task.startedAt && task.endedAt ? task.endedAt.getTime() - task.startedAt.getTime() : null,
    };
  });
  const order = rankContenders(
    views.map((v) => ({
      taskId: v.task.id,
      state: v.task.state,
      check: (v.check?.outcome ?? null) as CheckOutcome | null,
      filesChanged: v.filesChanged,
      linesChanged: v.linesAdded + v.linesRemoved,
      cost: v.cost,
      seq: v.task.seq,
    })),
  );
  for (const v of views) v.rank = order.indexOf(v.task.id) + 1;
  views.sort((a, b) => a.rank - b.rank);
  const state: ArenaState = arena.decidedAt ? 'decided' : tasks.some(isOpen) ? 'running' : 'finished';
  return { arena, state, contenders: views };
}

export interface ArenaDecision {
  arena: arenas.Arena;
  applied: number;
  rejected: number;
}

/**
 * Picks the winner (`winner` a contender's task id) or none (`winner` null): the winner's pending
 * changes are applied as one batch, all or nothing with the usual guards (actOnChanges); then
 * every other contender's pending changes are rejected. If the winner's changes cannot be applied,
 * nothing is rejected and the arena stays undecided.
 */
export async function decideArena(deps: Deps, id: string, winner: string | null): Promise<ArenaDecision> {
  await findArenaOrThrow(deps, id);
  const tasks = await arenas.listContenders(deps.db, id);
  const winnerId = winner?.toLowerCase() ?? null;
  if (winnerId && !tasks.some((t) => t.id === winnerId)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `task ${winnerId} is not a contender of arena ${id}; see get_arena`,
    );
  }
  const open = tasks.find(isOpen);
  if (open) {
    throw new BoocoderError(
      'E_ARENA_NOT_FINISHED',
      `contender ${open.id} is still ${open.state}; wait for it (get_arena with wait_s) or cancel it (cancel_task)`,
    );
  }
  if (!(await arenas.claimArenaDecision(deps.db, id, winnerId))) {
    throw new BoocoderError('E_ARENA_DECIDED', `arena ${id} is already decided; get_arena shows the pick`);
  }
  const pending = (await arenas.listArenaChanges(deps.db, id)).filter((c) => c.status === 'pending');
  const won = pending.filter((c) => c.taskId === winnerId).map((c) => c.id);
  try {
    if (won.length > 0) await actOnChanges(deps, won, 'apply');
  } catch (err) {
    await arenas.releaseArenaDecision(deps.db, id);
    throw err;
  }
  const lost = pending.filter((c) => c.taskId !== winnerId).map((c) => c.id);
  if (lost.length > 0) await actOnChanges(deps, lost, 'reject');
  return { arena: await findArenaOrThrow(deps, id), applied: won.length, rejected: lost.length };
}

export async function listArenas(
  deps: Deps,
  f: arenas.ArenaFilter,
): Promise<(arenas.Arena & { contenders: number; open: number })[]> {
  return arenas.listArenas(deps.db, f);
}
