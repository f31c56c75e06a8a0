/**
 * What the dispatcher asks of a task runner and gives it (a claimed task, a signal that says why it
 * should stop, and a way to record its end), and the dispatcher's options.
 */
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import type { TaskOutcome } from '../db/tasks.js';
import type { Logger } from '../log.js';
import type { ClaimAheadOptions } from './claim-ahead.js';

/** Why a running task's signal was aborted; the runner decides what each means for the task. */
export type StopReason = 'cancel' | 'lease-lost' | 'shutdown' | 'timeout' | 'budget';

export interface TaskRunContext {
  owner: string;
  signal: AbortSignal;
}

/** What a runner gets with its claimed task. */
export interface ClaimedTaskContext extends TaskRunContext {
  /**
   * Records the task's final state while this dispatcher holds its lease (false when it no longer
   * does), NOTIFYing tasks_done; with claiming ahead on, in the same statement that claims the next
   * task for the slot it frees. Await it before returning. A result that must commit with other
   * rows (the task's changes) is recorded with finishTask in the runner's own transaction instead;
   * the slot is then refilled when the runner returns.
   */
  finish(outcome: TaskOutcome): Promise<boolean>;
}

/** Runs one claimed task to its end, including recording its final state while it holds the lease. */
export type TaskRunner = (task: Task, ctx: ClaimedTaskContext) => Promise<void>;

export interface DispatcherOptions {
  db: Db;
  logger: Logger;
  runTask: TaskRunner;
  concurrency: number;
  pollMs: number;
  leaseMs: number;
  shutdownGraceMs: number;
  owner?: string;
  /** Claims only tasks of projects on this machine (project-machine.ts); unset: any task. */
  machineId?: string;
  /**
   * Claiming ahead (claim-ahead.ts) and batched finishes (ctx.finish records the end in the next
   * claim statement, finish-and-claim-batcher.ts): only a queue of very short jobs gains from them
   * (the no-op benchmark), so they are off unless `enabled`. A held task waits at most 250 ms or a
   * quarter lease unless `maxWaitMs` says otherwise.
   */
  claimAhead?: Partial<ClaimAheadOptions> & { enabled: boolean };
}
