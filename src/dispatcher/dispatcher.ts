/**
 * The dispatcher: claims pending tasks (woken by NOTIFY tasks_new, with a fallback poll), runs up to
 * `concurrency` at once, keeps their leases alive with a heartbeat, stops a task when it is cancelled
 * or its lease is lost, and on shutdown stops claiming and hands unfinished tasks back.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import {
  claimTasks,
  type ExpiredLease,
  findCancelRequested,
  releaseExpiredLeases,
  releaseTask,
  renewLeases,
} from '../db/tasks.js';
import type { Logger } from '../log.js';
import { TASKS_CANCEL_CHANNEL } from '../services/tasks.js';
import { killOrphanedAgentGroup } from './orphaned-agents.js';

export const TASKS_NEW_CHANNEL = 'tasks_new';

/** Why a running task's signal was aborted; the runner decides what each means for the task. */
export type StopReason = 'cancel' | 'lease-lost' | 'shutdown' | 'timeout';

export interface TaskRunContext {
  owner: string;
  signal: AbortSignal;
}

/** Runs one claimed task to its end, including recording its final state while it holds the lease. */
export type TaskRunner = (task: Task, ctx: TaskRunContext) => Promise<void>;

export interface DispatcherOptions {
  db: Db;
  logger: Logger;
  runTask: TaskRunner;
  concurrency: number;
  pollMs: number;
  leaseMs: number;
  shutdownGraceMs: number;
  owner?: string;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
  /** Stops the task when its lease has not been renewed for too long (see fenceTask). */
  fence?: NodeJS.Timeout;
}

export class Dispatcher {
  readonly owner: string;
  private readonly running = new Map<string, Running>();
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly unlisten: (() => Promise<void>)[] = [];
  private draining: Promise<void> | undefined;
  private polling: Promise<void> | undefined;
  private wakeAgain = false;
  private stopping = false;

  constructor(private readonly o: DispatcherOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    this.unlisten.push(await this.o.db.listen(TASKS_NEW_CHANNEL, () => this.wake()));
    this.unlisten.push(await this.o.db.listen(TASKS_CANCEL_CHANNEL, (id) => this.stopTask(id, 'cancel')));
    this.pollTimer = setInterval(() => void this.pollOnce(), this.o.pollMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    await this.pollOnce();
  }

  private get heartbeatMs(): number {
    return Math.max(250, Math.floor(this.o.leaseMs / 3));
  }

  /** How many tasks this dispatcher is running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Claims as long as there is a free slot and a claimable task. Re-entrant calls coalesce. */
  wake(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.wakeAgain = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.wakeAgain) {
        this.wakeAgain = false;
        this.wake();
      }
    });
  }

  /**
   * Fills the free slots with one claim per round trip (claimTasks takes as many as are free), and
   * asks again only while the last claim says more may be claimable: an idle dispatcher woken for
   * one task makes one round trip, not a second one that finds nothing.
   */
  private async drain(): Promise<void> {
    while (!this.stopping && this.running.size < this.o.concurrency) {
      let claimed: { tasks: Task[]; more: boolean };
      try {
        claimed = await claimTasks(
          this.o.db,
          this.owner,
          this.o.leaseMs,
          this.o.concurrency - this.running.size,
        );
      } catch (err) {
        // 23505: another dispatcher started a task of the same session at the same instant; try
        // again at once (that session is now excluded). Anything else (database down) waits for the poll.
        if ((err as { code?: string }).code === '23505') this.wakeAgain = true;
        else this.o.logger.warn('claim failed', { err });
        return;
      }
      if (this.stopping) {
        // stop() began while this claim was in flight: hand the tasks straight back, attempts unspent.
        await Promise.all(
          claimed.tasks.map((task) =>
            releaseTask(this.o.db, task.id, this.owner).catch((err: unknown) =>
              this.o.logger.warn('could not hand back a task claimed during shutdown', {
                taskId: task.id,
                err,
              }),
            ),
          ),
        );
        return;
      }
      for (const task of claimed.tasks) this.startTask(task);
      if (!claimed.more) return;
    }
  }

  private startTask(task: Task): void {
    const controller = new AbortController();
    const log = this.o.logger.child({ taskId: task.id });
    log.debug('task claimed', { attempt: task.attempts });
    const done = this.o
      .runTask(task, { owner: this.owner, signal: controller.signal })
      .catch((err: unknown) => log.error('task runner failed', { err }))
      .finally(() => {
        clearTimeout(this.running.get(task.id)?.fence);
        this.running.delete(task.id);
        this.wake();
      });
    const entry: Running = { controller, done };
    this.running.set(task.id, entry);
    this.fenceTask(task.id, entry, Date.now());
  }

  private stopTask(id: string, reason: StopReason): void {
    const r = this.running.get(id);
    if (r && !r.controller.signal.aborted) r.controller.abort(reason);
  }

  /** One poll at a time: a sweep slower than the poll interval must not pile up behind itself. */
  private pollOnce(): Promise<void> {
    this.polling ??= this.poll().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async poll(): Promise<void> {
    if (this.stopping) return;
    try {
      const released = await releaseExpiredLeases(this.o.db, {
        beforeRelease: (expired) => this.stopOrphanedAgents(expired),
        keep: { owner: this.owner, ids: [...this.running.keys()] },
      });
      if (released > 0) this.o.logger.info('released expired leases', { count: released });
    } catch (err) {
      this.o.logger.warn('lease sweep failed', { err });
    }
    this.wake();
  }

  /** Kills what dead dispatchers on this host left running, before their tasks can be claimed again. */
  private async stopOrphanedAgents(expired: ExpiredLease[]): Promise<void> {
    for (const e of expired) {
      if (e.agentPid === null || e.agentPidStarted === null || !e.agentHost || !e.agentBootId) continue;
      const outcome = await killOrphanedAgentGroup({
        pid: e.agentPid,
        startTicks: e.agentPidStarted,
        host: e.agentHost,
        bootId: e.agentBootId,
      });
      const log = this.o.logger.child({ taskId: e.id, pgid: e.agentPid });
      if (outcome === 'killed') log.info('killed the agent of an expired lease');
      else if (outcome === 'lingering') log.warn('the agent of an expired lease survived SIGKILL');
      else if (outcome === 'other-host') log.warn('the agent of an expired lease ran on another host');
    }
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys()];
    if (ids.length === 0) return;
    const sentAt = Date.now();
    try {
      const held = new Set(await renewLeases(this.o.db, this.owner, ids, this.o.leaseMs));
      for (const id of ids) {
        const r = this.running.get(id);
        if (!r) continue;
        if (held.has(id)) this.fenceTask(id, r, sentAt);
        else this.stopTask(id, 'lease-lost');
      }
      for (const id of await findCancelRequested(this.o.db, ids)) this.stopTask(id, 'cancel');
    } catch (err) {
      this.o.logger.warn('heartbeat failed', { err });
    }
  }

  /**
   * Self-fencing. The database counts a lease from when it ran the renewal, which is after
   * `renewedFrom` (when it was sent), so the lease lasts at least until renewedFrom + leaseMs. If no
   * renewal succeeds for two thirds of that (database unreachable, or too slow to answer), stop the
   * task: another dispatcher may take it over once the lease expires, and the last third is the
   * agent's time to stop, so that the task never runs twice at once. It stays running in the
   * database until the lease expires, then runs again.
   */
  private fenceTask(id: string, r: Running, renewedFrom: number): void {
    clearTimeout(r.fence);
    const wait = renewedFrom + Math.floor((this.o.leaseMs * 2) / 3) - Date.now();
    r.fence = setTimeout(
      () => {
        this.o.logger.warn('lease not renewed in time; stopping the task', { taskId: id });
        this.stopTask(id, 'lease-lost');
      },
      Math.max(0, wait),
    );
  }

  /**
   * Stops claiming, lets running tasks finish for up to the grace period, then aborts the rest
   * (their runners hand them back to the queue) and waits for them to settle.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.pollTimer);
    await Promise.allSettled(this.unlisten.map((u) => u()));
    // A sweep or claim in flight finishes (a claim is handed back) before the running set is final.
    await this.polling;
    await this.draining;
    const all = () => Promise.allSettled([...this.running.values()].map((r) => r.done));
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, this.o.shutdownGraceMs);
    });
    await Promise.race([all(), grace]);
    clearTimeout(graceTimer);
    for (const id of this.running.keys()) this.stopTask(id, 'shutdown');
    // The heartbeat keeps the leases alive through the grace period and while the last runners hand
    // their tasks back: were it stopped, a grace longer than a lease would let another dispatcher
    // take over a task still running here.
    await all();
    clearInterval(this.heartbeatTimer);
  }
}
