/**
 * Claiming ahead: while the tasks a dispatcher runs are short (a queue drained of quick jobs), each
 * claim statement also takes up to `concurrency` more tasks than it has free slots, and holds them
 * here until a slot frees. A slot then refills without waiting for a round trip, and the next
 * statement records the finishes of both sets: twice the work per statement, whose cost is mostly
 * its commit (graphile-worker's local queue does the same).
 *
 * Only while runs are short: a task held here is `running` in the database (its lease held, its
 * session busy) without running, so holding one behind agent runs of minutes would keep it from
 * another dispatcher with a free slot. Hence the recent runs must average under shortRunMs and
 * none running now may have run longer; a task not started within maxWaitMs goes back to the queue
 * (attempt unspent), and claiming ahead then waits for another streak of short runs.
 */
import type { Task } from '../db/rows.js';

/** Runs shorter than this on average make claiming ahead worth it: a held task waits about one run. */
export const SHORT_RUN_MS = 20;

export interface ClaimAheadOptions {
  /** How long a held task waits for a slot before it goes back to the queue. */
  maxWaitMs: number;
  /** Default SHORT_RUN_MS. */
  shortRunMs?: number;
}

/** Runs recorded before claiming ahead starts: one quick failure is not a drained queue of quick jobs. */
const RUNS_BEFORE_CLAIMING_AHEAD = 8;

/** Weight of the newest run in the moving average: a few long runs stop claiming ahead quickly. */
const NEWEST_RUN_WEIGHT = 0.25;

interface HeldTask {
  task: Task;
  heldSince: number;
  /** Its cancel arrived while it was held: it starts with its signal already aborted. */
  cancelled: boolean;
}

export class ClaimedAheadTasks {
  private readonly held: HeldTask[] = [];
  private averageRunMs = Number.POSITIVE_INFINITY;
  private runs = 0;
  private expiryTimer: NodeJS.Timeout | undefined;

  /**
   * At most `concurrency` tasks are held; one held for maxWaitMs is removed and passed to `expired`,
   * which hands it back to the queue.
   */
  private readonly maxWaitMs: number;
  private readonly shortRunMs: number;

  constructor(
    private readonly concurrency: number,
    o: ClaimAheadOptions,
    private readonly expired: (tasks: Task[]) => void,
  ) {
    this.maxWaitMs = o.maxWaitMs;
    this.shortRunMs = o.shortRunMs ?? SHORT_RUN_MS;
  }

  get size(): number {
    return this.held.length;
  }

  /** The ids held, for lease renewal. */
  ids(): string[] {
    return this.held.map((h) => h.task.id);
  }

  /**
   * How many tasks may be held now: `concurrency` while runs are short, else none. `longestRunningMs`
   * is how long the oldest run still going has lasted: a long one is not in the average yet.
   */
  limit(longestRunningMs: number): number {
    const short =
      this.runs >= RUNS_BEFORE_CLAIMING_AHEAD &&
      this.averageRunMs < this.shortRunMs &&
      longestRunningMs < this.shortRunMs;
    return short ? this.concurrency : 0;
  }

  /** A task ran for `ms` (claimed to finish recorded or runner returned). */
  recordRun(ms: number): void {
    this.runs++;
    this.averageRunMs =
      this.runs === 1 ? ms : this.averageRunMs + NEWEST_RUN_WEIGHT * (ms - this.averageRunMs);
  }

  hold(task: Task, now: number): void {
    this.held.push({ task, heldSince: now, cancelled: false });
    this.scheduleExpiry();
  }

  /** The oldest held task (held in seq order: claims take the oldest first). */
  next(): { task: Task; heldSince: number; cancelled: boolean } | undefined {
    return this.held.shift();
  }

  /** True when the task was held here (it will start cancelled). */
  markCancelled(id: string): boolean {
    const h = this.held.find((x) => x.task.id === id);
    if (h) h.cancelled = true;
    return h !== undefined;
  }

  /** Drops tasks this dispatcher no longer holds the lease of. */
  drop(ids: ReadonlySet<string>): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      if (ids.has((this.held[i] as HeldTask).task.id)) this.held.splice(i, 1);
    }
  }

  /** Removes and returns every held task: the dispatcher is stopping. */
  close(): Task[] {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    return this.held.splice(0).map((h) => h.task);
  }

  private scheduleExpiry(): void {
    const first = this.held[0];
    if (this.expiryTimer || !first) return;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = undefined;
        const expired = this.takeExpired(Date.now());
        if (expired.length > 0) this.expired(expired);
        this.scheduleExpiry();
      },
      Math.max(0, first.heldSince + this.maxWaitMs - Date.now()),
    );
  }

  /** Removes and returns the tasks held for maxWaitMs or longer (held in order: the oldest first). */
  private takeExpired(now: number): Task[] {
    let n = 0;
    while (n < this.held.length && now - (this.held[n] as HeldTask).heldSince >= this.maxWaitMs) n++;
    // Held in vain: the runs are not that short after all.
    if (n > 0) this.runs = 0;
    return this.held.splice(0, n).map((h) => h.task);
  }
}
