/**
 * The dispatcher: claims pending tasks (woken by NOTIFY tasks_new, with a fallback poll), runs up to
 * `concurrency` at once, keeps their leases alive with a heartbeat, stops a task when it is cancelled
 * or its lease is lost, and on shutdown stops claiming and hands unfinished tasks back.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import { claimNextTask, findCancelRequested, releaseExpiredLeases, renewLeases } from '../db/tasks.js';
import type { Logger } from '../log.js';
import { TASKS_CANCEL_CHANNEL } from '../services/tasks.js';

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
}

export class Dispatcher {
  readonly owner: string;
  private readonly running = new Map<string, Running>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unlisten: (() => Promise<void>)[] = [];
  private draining = false;
  private wakeAgain = false;
  private stopping = false;

  constructor(private readonly o: DispatcherOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    this.unlisten.push(await this.o.db.listen(TASKS_NEW_CHANNEL, () => this.wake()));
    this.unlisten.push(await this.o.db.listen(TASKS_CANCEL_CHANNEL, (id) => this.stopTask(id, 'cancel')));
    this.timers.push(setInterval(() => void this.poll(), this.o.pollMs));
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(250, Math.floor(this.o.leaseMs / 3))));
    await this.poll();
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
    this.draining = true;
    void this.drain().finally(() => {
      this.draining = false;
      if (this.wakeAgain) {
        this.wakeAgain = false;
        this.wake();
      }
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopping && this.running.size < this.o.concurrency) {
      let task: Task | null;
      try {
        task = await claimNextTask(this.o.db, this.owner, this.o.leaseMs);
      } catch (err) {
        // 23505: another dispatcher started a task of the same session at the same instant; the
        // next wake or poll tries again. Anything else (database down) waits for the poll too.
        if ((err as { code?: string }).code !== '23505') this.o.logger.warn('claim failed', { err });
        return;
      }
      if (!task) return;
      this.startTask(task);
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
        this.running.delete(task.id);
        this.wake();
      });
    this.running.set(task.id, { controller, done });
  }

  private stopTask(id: string, reason: StopReason): void {
    const r = this.running.get(id);
    if (r && !r.controller.signal.aborted) r.controller.abort(reason);
  }

  private async poll(): Promise<void> {
    if (this.stopping) return;
    try {
      const released = await releaseExpiredLeases(this.o.db);
      if (released > 0) this.o.logger.info('released expired leases', { count: released });
    } catch (err) {
      this.o.logger.warn('lease sweep failed', { err });
    }
    this.wake();
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys()];
    if (ids.length === 0) return;
    try {
      const held = new Set(await renewLeases(this.o.db, this.owner, ids, this.o.leaseMs));
      for (const id of ids) if (!held.has(id) && this.running.has(id)) this.stopTask(id, 'lease-lost');
      for (const id of await findCancelRequested(this.o.db, ids)) this.stopTask(id, 'cancel');
    } catch (err) {
      this.o.logger.warn('heartbeat failed', { err });
    }
  }

  /**
   * Stops claiming, lets running tasks finish for up to the grace period, then aborts the rest
   * (their runners hand them back to the queue) and waits for them to settle.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.allSettled(this.unlisten.map((u) => u()));
    const all = () => Promise.allSettled([...this.running.values()].map((r) => r.done));
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, this.o.shutdownGraceMs);
    });
    await Promise.race([all(), grace]);
    clearTimeout(graceTimer);
    for (const id of this.running.keys()) this.stopTask(id, 'shutdown');
    // Heartbeats have stopped; keep the leases alive while the last runners hand their tasks back.
    await all();
  }
}
