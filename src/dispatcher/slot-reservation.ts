/**
 * Claim at insert. A task queued in a process whose dispatcher has a free slot is inserted already
 * claimed by that dispatcher (insertTask with `claimedBy`: running, attempt 1, its lease, exactly
 * what a claim statement writes) and handed to it in process once the insert has committed. Its
 * pickup then costs the INSERT's round trip alone, instead of that plus a NOTIFY, the LISTEN
 * connection's wake-up and a claim statement. Other dispatchers are not woken for such a row
 * (the insert trigger notifies only pending rows, sql/0006).
 *
 * The slot is reserved before the insert is sent, so no claim statement fills it meanwhile, and it
 * is released when the insert fails or leaves the task pending (its session was busy, or older
 * tasks wait): the task then goes the usual way, through the NOTIFY.
 */
import type { Task } from '../db/rows.js';
import type { TaskClaim } from '../db/task-inserts.js';

/** A free slot of a dispatcher, held for one task being inserted. Settle it exactly once. */
export interface SlotReservation {
  /** Pass as `claimedBy` to insertTask. */
  readonly claim: TaskClaim;
  /** The insert committed: runs the task when the insert claimed it, frees the slot otherwise. */
  handOver(task: Task): void;
  /** The insert did not commit: frees the slot. */
  cancel(): void;
}

/** What new_task needs of the process's dispatcher. */
export interface SlotReserver {
  /** A free slot, or undefined when none is (or the dispatcher is not running). */
  reserveSlot(): SlotReservation | undefined;
}

/**
 * Settles `slot` with the outcome of `inserting` (an insert that was given `slot.claim`, in a
 * transaction or not): the task goes to the dispatcher once its row is committed, never before.
 */
export async function handOverInserted<T extends { task: Task }>(
  slot: SlotReservation | undefined,
  inserting: Promise<T>,
): Promise<T> {
  let inserted: T;
  try {
    inserted = await inserting;
  } catch (err) {
    slot?.cancel();
    throw err;
  }
  slot?.handOver(inserted.task);
  return inserted;
}

/** What a dispatcher lends its SlotReservations. */
export interface ReservationHost {
  claim: TaskClaim;
  /** True when a slot may be reserved now: the dispatcher runs, and a slot is neither used nor reserved. */
  canReserve(): boolean;
  /** The insert claimed the task: into the slot with it (its lease began after `leaseFrom`). Never rejects. */
  adopt(task: Task, leaseFrom: number): Promise<void> | void;
  /** A reserved slot is free again, with no task. */
  released(): void;
}

/** A dispatcher's reserved slots: how many there are, and waiting for them to settle at shutdown. */
export class SlotReservations {
  /** Reserved slots, not yet settled: the dispatcher counts them as used. */
  count = 0;
  private readonly unsettled = new Set<Promise<void>>();

  constructor(private readonly host: ReservationHost) {}

  reserve(): SlotReservation | undefined {
    if (!this.host.canReserve()) return undefined;
    this.count++;
    // Before the INSERT is sent: the lease the database writes cannot have begun earlier.
    const leaseFrom = Date.now();
    let markSettled: () => void = () => {};
    const settled = new Promise<void>((resolve) => {
      markSettled = resolve;
    });
    this.unsettled.add(settled);
    let open = true;
    const settle = async (adopted: Task | undefined) => {
      if (!open) return;
      open = false;
      // In the same turn as adopt's startTask: no claim statement sees the slot free in between.
      this.count--;
      try {
        if (adopted) await this.host.adopt(adopted, leaseFrom);
        else this.host.released();
      } finally {
        this.unsettled.delete(settled);
        markSettled();
      }
    };
    return {
      claim: this.host.claim,
      handOver: (task) => {
        const ours = task.state === 'running' && task.leaseOwner === this.host.claim.owner;
        void settle(ours ? task : undefined);
      },
      cancel: () => void settle(undefined),
    };
  }

  /** Resolves once every reservation taken so far has settled (a task handed back included). */
  async settle(): Promise<void> {
    while (this.unsettled.size > 0) await Promise.all([...this.unsettled]);
  }
}
