/**
 * The dispatcher: claims pending tasks (woken by NOTIFY tasks_new, with a fallback poll), runs up to
 * `concurrency` at once, keeps their leases alive with a heartbeat, stops a task when it is cancelled
 * or its lease is lost, and on shutdown stops claiming and hands unfinished tasks back. Claims go
 * out one statement at a time (FinishAndClaimBatcher). A task queued in this
 * process while a slot is free is claimed by its own INSERT and handed over here (reserveSlot).
 * With claiming ahead on (an option, off by default), while runs are short, claims take more tasks
 * than there are free slots (claim-ahead.ts) and finishes ride in the claim statements.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { TASKS_CANCEL_CHANNEL, TASKS_NEW_CHANNEL } from '../db/channels.js';
import type { Task } from '../db/rows.js';
import { finishTask, releaseTask } from '../db/tasks.js';
import { ClaimedAheadTasks } from './claim-ahead.js';
import { ExpiredLeaseSweeper } from './expired-leases.js';
import { FinishAndClaimBatcher } from './finish-and-claim-batcher.js';
import { LeaseKeeper } from './lease-keeper.js';
import { type SlotReservation, SlotReservations, type SlotReserver } from './slot-reservation.js';
import type { ClaimedTaskContext, DispatcherOptions, StopReason } from './task-runner.js';

interface Running {
  controller: AbortController;
  startedAt: number;
  /** Its runner handed over its final state (ctx.finish): it still holds its claim until recorded. */
  finishing: boolean;
  done: Promise<void>;
}

export class Dispatcher implements SlotReserver {
  readonly owner: string;
  /** Tasks holding a slot: claimed, and their final state not yet recorded through ctx.finish. */
  private readonly running = new Map<string, Running>();
  /** Runners whose task's end is recorded (their slot is refilled) but which have not returned yet. */
  private readonly returning = new Set<Running>();
  /** Entries of `running` whose runner has handed over its final state. */
  private finishing = 0;
  private readonly statements: FinishAndClaimBatcher;
  private readonly reservations: SlotReservations;
  private readonly ahead: ClaimedAheadTasks;
  /** Claiming ahead and batched finishes are on (DispatcherOptions.claimAhead). */
  private readonly batched: boolean;
  private pollTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweeper: ExpiredLeaseSweeper;
  private readonly leases: LeaseKeeper;
  private readonly unlisten: (() => Promise<void>)[] = [];
  private polling: Promise<void> | undefined;
  private started = false;
  private stopping = false;

  constructor(private readonly o: DispatcherOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    // Well inside a lease: a held task goes back long before its lease could lapse.
    const { enabled: claimAhead = false, ...claimAheadTuning } = o.claimAhead ?? {};
    this.batched = claimAhead;
    this.ahead = new ClaimedAheadTasks(
      claimAhead ? o.concurrency : 0,
      { maxWaitMs: Math.min(250, o.leaseMs / 4), ...claimAheadTuning },
      (tasks) => void this.handBack(tasks),
    );
    this.statements = new FinishAndClaimBatcher({
      db: o.db,
      logger: o.logger,
      owner: this.owner,
      leaseMs: o.leaseMs,
      machineId: o.machineId,
      capacity: () => o.concurrency + this.ahead.limit(this.longestRunningMs()),
      usedSlots: () => this.running.size + this.reservations.count + this.ahead.size,
      stopping: () => this.stopping,
      freed: (id) => this.freeSlot(id),
      claimed: (tasks) => this.takeClaimed(tasks),
    });
    this.leases = new LeaseKeeper({
      db: o.db,
      logger: o.logger,
      owner: this.owner,
      leaseMs: o.leaseMs,
      heldIds: () => [...this.running.keys(), ...this.ahead.ids()],
      isRunning: (id) => this.running.has(id),
      lost: (id) => (this.running.has(id) ? this.stopTask(id, 'lease-lost') : this.ahead.drop(new Set([id]))),
      cancelled: (id) => this.stopTask(id, 'cancel'),
    });
    this.sweeper = new ExpiredLeaseSweeper({
      db: o.db,
      logger: o.logger,
      keep: () => ({ owner: this.owner, ids: [...this.running.keys(), ...this.ahead.ids()] }),
      released: () => this.wake(),
    });
    this.reservations = new SlotReservations({
      claim: { owner: this.owner, leaseMs: o.leaseMs },
      // A held task is older than the one being inserted: the insert must not overtake it.
      canReserve: () =>
        this.started &&
        !this.stopping &&
        this.ahead.size === 0 &&
        this.running.size + this.reservations.count + this.statements.claimingSlots < o.concurrency,
      adopt: (task, leaseFrom) =>
        this.stopping ? this.handBack([task]) : this.takeClaimed([task], leaseFrom),
      released: () => {
        this.startHeld();
        this.wake();
      },
    });
  }

  async start(): Promise<void> {
    this.unlisten.push(await this.o.db.listen(TASKS_NEW_CHANNEL, () => this.wake()));
    this.unlisten.push(await this.o.db.listen(TASKS_CANCEL_CHANNEL, (id) => this.stopTask(id, 'cancel')));
    this.pollTimer = setInterval(() => void this.pollOnce(), this.o.pollMs);
    // Expired leases are swept at least once a lease, however long the fallback poll: a task whose
    // run ended without recording its result (the database was unreachable then) stays `running`
    // until a sweep hands it back.
    this.sweepTimer = setInterval(() => void this.sweep(), Math.min(this.o.pollMs, this.o.leaseMs));
    this.leases.start();
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

  /** How many tasks this dispatcher is running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Claims as long as there is a free slot and a claimable task. Calls while a claim is in flight coalesce. */
  wake(): void {
    if (!this.stopping) this.statements.wantClaim();
  }

  /** Claimed tasks (leases set no earlier than `leaseFrom`) start in free slots, behind any held. */
  private async takeClaimed(tasks: Task[], leaseFrom = Date.now()): Promise<void> {
    if (this.stopping) return this.handBack(tasks);
    for (const task of tasks) {
      if (this.slotFree() && this.ahead.size === 0) this.startTask(task, leaseFrom);
      else this.ahead.hold(task, leaseFrom);
    }
    this.startHeld();
  }

  private longestRunningMs(): number {
    let since = Number.POSITIVE_INFINITY;
    for (const r of this.running.values()) if (!r.finishing) since = Math.min(since, r.startedAt);
    return Number.isFinite(since) ? Date.now() - since : 0;
  }

  /**
   * A runner is free to start: tasks whose runner has handed over its final state run nothing. They
   * still count against the claims' capacity until recorded (the claim statement that records them
   * also claims for them), so claimed plus held tasks never exceed it.
   */
  private slotFree(): boolean {
    return this.running.size - this.finishing + this.reservations.count < this.o.concurrency;
  }

  /** Fills free slots with held tasks, oldest first. */
  private startHeld(): void {
    if (this.stopping) return;
    for (
      let h = this.slotFree() ? this.ahead.next() : undefined;
      h;
      h = this.slotFree() ? this.ahead.next() : undefined
    )
      this.startTask(h.task, h.heldSince, h.cancelled);
  }

  /** Claimed during stop(), or held (claimed ahead) too long: back to the queue, attempts unspent. */
  private async handBack(tasks: Task[]): Promise<void> {
    await Promise.all(
      tasks.map((task) =>
        releaseTask(this.o.db, task.id, this.owner).catch((err: unknown) =>
          this.o.logger.warn('could not hand a claimed task back', { taskId: task.id, err }),
        ),
      ),
    );
  }

  /** The task's end is recorded: its slot is free, though its runner may still be returning. */
  private freeSlot(id: string): void {
    const r = this.running.get(id);
    if (!r) return;
    this.leases.unfence(id);
    this.removeRunning(id, r);
    this.returning.add(r);
  }

  private removeRunning(id: string, r: Running): void {
    this.running.delete(id);
    if (r.finishing) this.finishing--;
    else this.ahead.recordRun(Date.now() - r.startedAt);
  }

  /** The runner handed over its final state: it runs nothing more, so a held task may start. */
  private runnerFinishing(id: string, r: Running): void {
    if (r.finishing || this.running.get(id) !== r) return;
    r.finishing = true;
    this.finishing++;
    this.ahead.recordRun(Date.now() - r.startedAt);
    this.startHeld();
  }

  /**
   * Runs a claimed task in a slot; its lease was set no earlier than `leaseFrom` (Date.now() time).
   * A task cancelled while held starts with its signal aborted: its runner records the cancel.
   */
  private startTask(task: Task, leaseFrom: number, cancelled = false): void {
    const controller = new AbortController();
    if (cancelled) controller.abort('cancel' satisfies StopReason);
    this.o.logger.debug('task claimed', { taskId: task.id, attempt: task.attempts });
    const entry: Running = { controller, startedAt: Date.now(), finishing: false, done: Promise.resolve() };
    this.running.set(task.id, entry);
    const ctx: ClaimedTaskContext = {
      owner: this.owner,
      signal: controller.signal,
      finish: (outcome) => {
        // The default: its own statement; the slot is refilled when the runner returns.
        if (!this.batched) return finishTask(this.o.db, task.id, this.owner, outcome);
        const recorded = this.statements.finish(task.id, outcome);
        this.runnerFinishing(task.id, entry);
        return recorded;
      },
    };
    entry.done = this.o
      .runTask(task, ctx)
      .catch((err: unknown) => this.o.logger.error('task runner failed', { taskId: task.id, err }))
      .finally(() => this.runnerReturned(task.id, entry));
    this.leases.fence(task.id, leaseFrom);
  }

  private runnerReturned(id: string, entry: Running): void {
    if (this.running.get(id) === entry) this.leases.unfence(id);
    this.returning.delete(entry);
    // A slot freed by ctx.finish was refilled by the statement that recorded the finish.
    if (this.running.get(id) !== entry) return;
    this.removeRunning(id, entry);
    this.startHeld();
    this.wake();
  }

  private stopTask(id: string, reason: StopReason): void {
    const r = this.running.get(id);
    if (r && !r.controller.signal.aborted) r.controller.abort(reason);
    else if (!r && reason === 'cancel' && this.ahead.markCancelled(id))
      this.o.logger.debug('task cancelled while held for a slot; it will start cancelled', { taskId: id });
  }

  private async sweep(): Promise<void> {
    if (!this.stopping) await this.sweeper.sweepOnce();
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
    await this.sweep();
    this.wake();
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
    await this.sweeper.settle();
    await this.reservations.settle();
    await this.statements.settle();
    await this.handBack(this.ahead.close());
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
    this.leases.stop();
  }
}
