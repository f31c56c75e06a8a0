/**
 * The dispatcher: claims pending tasks (woken by NOTIFY tasks_new, with a fallback poll), runs up to
 * `concurrency` at once, keeps their leases alive with a heartbeat, stops a task when it is cancelled
 * or its lease is lost, and on shutdown stops claiming and hands unfinished tasks back. Claims and
 * the finishes runners hand it share statements (FinishAndClaimBatcher). A task queued in this
 * process while a slot is free is claimed by its own INSERT and handed over here (reserveSlot).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import { findCancelRequested, releaseTask, renewLeases, type TaskOutcome } from '../db/tasks.js';
import type { Logger } from '../log.js';
import { TASKS_CANCEL_CHANNEL } from '../services/tasks.js';
import { sweepExpiredLeases } from './expired-leases.js';
import { FinishAndClaimBatcher } from './finish-and-claim-batcher.js';
import { type SlotReservation, SlotReservations, type SlotReserver } from './slot-reservation.js';

export const TASKS_NEW_CHANNEL = 'tasks_new';

/** Why a running task's signal was aborted; the runner decides what each means for the task. */
export type StopReason = 'cancel' | 'lease-lost' | 'shutdown' | 'timeout';

export interface TaskRunContext {
  owner: string;
  signal: AbortSignal;
}

/** What a runner gets with its claimed task. */
export interface ClaimedTaskContext extends TaskRunContext {
  /**
   * Records the task's final state while this dispatcher holds its lease (false when it no longer
   * does), NOTIFYing tasks_done, in the same statement that claims the next task for the slot it
   * frees. Await it before returning. A result that must commit with other rows (the task's
   * changes) is recorded with finishTask in the runner's own transaction instead; the slot is then
   * refilled when the runner returns.
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
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
  /** Stops the task when its lease has not been renewed for too long (see fenceTask). */
  fence?: NodeJS.Timeout;
}

export class Dispatcher implements SlotReserver {
  readonly owner: string;
  /** Tasks holding a slot: claimed, and their final state not yet recorded through ctx.finish. */
  private readonly running = new Map<string, Running>();
  /** Runners whose task's end is recorded (their slot is refilled) but which have not returned yet. */
  private readonly returning = new Set<Running>();
  private readonly statements: FinishAndClaimBatcher;
  private readonly reservations: SlotReservations;
  private pollTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly unlisten: (() => Promise<void>)[] = [];
  private polling: Promise<void> | undefined;
  private started = false;
  private stopping = false;

  constructor(private readonly o: DispatcherOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.statements = new FinishAndClaimBatcher({
      db: o.db,
      logger: o.logger,
      owner: this.owner,
      leaseMs: o.leaseMs,
      concurrency: o.concurrency,
      usedSlots: () => this.running.size + this.reservations.count,
      stopping: () => this.stopping,
      freed: (id) => this.freeSlot(id),
      claimed: (tasks) => this.takeClaimed(tasks),
    });
    this.reservations = new SlotReservations({
      claim: { owner: this.owner, leaseMs: o.leaseMs },
      canReserve: () =>
        this.started &&
        !this.stopping &&
        this.running.size + this.reservations.count + this.statements.claimingSlots < o.concurrency,
      adopt: (task, leaseFrom) => (this.stopping ? this.handBack([task]) : this.startTask(task, leaseFrom)),
      released: () => this.wake(),
    });
  }

  async start(): Promise<void> {
    this.unlisten.push(await this.o.db.listen(TASKS_NEW_CHANNEL, () => this.wake()));
    this.unlisten.push(await this.o.db.listen(TASKS_CANCEL_CHANNEL, (id) => this.stopTask(id, 'cancel')));
    this.pollTimer = setInterval(() => void this.pollOnce(), this.o.pollMs);
    // Expired leases are swept at least once a lease, however long the fallback poll: a task whose
    // run ended without recording its result (the database was unreachable then) stays `running`
    // until a sweep hands it back.
    this.sweepTimer = setInterval(() => void this.sweepOnce(), Math.min(this.o.pollMs, this.o.leaseMs));
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.heartbeatMs);
    this.started = true;
    await this.pollOnce();
  }

  /**
   * A free slot for a task this process is about to insert (see slot-reservation.ts), or undefined
   * when every slot is taken or the dispatcher is not running.
   */
  reserveSlot(): SlotReservation | undefined {
    return this.reservations.reserve();
  }

  private get heartbeatMs(): number {
    return Math.max(250, Math.floor(this.o.leaseMs / 3));
  }

  /** How many tasks this dispatcher is running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Claims as long as there is a free slot and a claimable task. Calls while a claim is in flight coalesce. */
  wake(): void {
    if (!this.stopping) this.statements.wantClaim();
  }

  private async takeClaimed(tasks: Task[]): Promise<void> {
    if (!this.stopping) {
      for (const task of tasks) this.startTask(task, Date.now());
      return;
    }
    await this.handBack(tasks);
  }

  /** stop() began while these were being claimed: they go straight back, attempts unspent. */
  private async handBack(tasks: Task[]): Promise<void> {
    await Promise.all(
      tasks.map((task) =>
        releaseTask(this.o.db, task.id, this.owner).catch((err: unknown) =>
          this.o.logger.warn('could not hand back a task claimed during shutdown', { taskId: task.id, err }),
        ),
      ),
    );
  }

  /** The task's end is recorded: its slot is free, though its runner may still be returning. */
  private freeSlot(id: string): void {
    const r = this.running.get(id);
    if (!r) return;
    clearTimeout(r.fence);
    this.running.delete(id);
    this.returning.add(r);
  }

  /** Runs a claimed task in a slot; its lease was set no earlier than `leaseFrom` (Date.now() time). */
  private startTask(task: Task, leaseFrom: number): void {
    const controller = new AbortController();
    this.o.logger.debug('task claimed', { taskId: task.id, attempt: task.attempts });
    const entry: Running = { controller, done: Promise.resolve() };
    this.running.set(task.id, entry);
    const ctx: ClaimedTaskContext = {
      owner: this.owner,
      signal: controller.signal,
      finish: (outcome) => this.statements.finish(task.id, outcome),
    };
    entry.done = this.o
      .runTask(task, ctx)
      .catch((err: unknown) => this.o.logger.error('task runner failed', { taskId: task.id, err }))
      .finally(() => this.runnerReturned(task.id, entry));
    this.fenceTask(task.id, entry, leaseFrom);
  }

  private runnerReturned(id: string, entry: Running): void {
    clearTimeout(entry.fence);
    this.returning.delete(entry);
    // A slot freed by ctx.finish was refilled by the statement that recorded the finish.
    if (this.running.get(id) !== entry) return;
    this.running.delete(id);
    this.wake();
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
    await this.sweepOnce();
    this.wake();
  }

  /** Releases expired leases, waking the claim loop when it released any. One sweep at a time. */
  private sweepOnce(): Promise<number> {
    this.sweeping ??= this.sweepExpiredLeases().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepExpiredLeases(): Promise<number> {
    if (this.stopping) return 0;
    const keep = { owner: this.owner, ids: [...this.running.keys()] };
    const released = await sweepExpiredLeases(this.o.db, this.o.logger, keep);
    if (released > 0) this.wake();
    return released;
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
    clearInterval(this.sweepTimer);
    await Promise.allSettled(this.unlisten.map((u) => u()));
    // A sweep, claim or claiming insert in flight finishes (its tasks are handed back) before the
    // running set is final.
    await this.polling;
    await this.sweeping;
    await this.reservations.settle();
    await this.statements.settle();
    const all = () => Promise.allSettled([...this.running.values(), ...this.returning].map((r) => r.done));
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
    // The last finishes' statements: nothing of this dispatcher's touches the database after stop().
    await this.statements.settle();
    clearInterval(this.heartbeatTimer);
  }
}
