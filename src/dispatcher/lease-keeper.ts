/**
 * Keeps a dispatcher's leases: a heartbeat renews the leases of its tasks (running or claimed ahead)
 * and picks up cancels its NOTIFY may have missed, and each running task is fenced: stopped when
 * its lease has gone unrenewed for too long.
 */
import type { Db } from '../db/db.js';
import { findCancelRequested, renewLeases } from '../db/tasks.js';
import type { Logger } from '../log.js';

export interface LeaseHolder {
  db: Db;
  logger: Logger;
  owner: string;
  leaseMs: number;
  /** The tasks whose leases this dispatcher holds now. */
  heldIds(): string[];
  /** True while the task runs here (it is fenced); false for a task only claimed ahead. */
  isRunning(id: string): boolean;
  /** The task's lease was not renewed (another dispatcher holds it, or it ended): stop or drop it. */
  lost(id: string): void;
  /** A cancel of the task was requested. */
  cancelled(id: string): void;
}

export class LeaseKeeper {
  private readonly fences = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly h: LeaseHolder) {}

  start(): void {
    const intervalMs = Math.max(250, Math.floor(this.h.leaseMs / 3));
    this.timer = setInterval(() => void this.beat(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Self-fencing. The database counts a lease from when it ran the renewal, which is after
   * `renewedFrom` (when it was sent), so the lease lasts at least until renewedFrom + leaseMs. If no
   * renewal succeeds for two thirds of that (database unreachable, or too slow to answer), stop the
   * task: another dispatcher may take it over once the lease expires, and the last third is the
   * agent's time to stop, so that the task never runs twice at once. It stays running in the
   * database until the lease expires, then runs again.
   */
  fence(id: string, renewedFrom: number): void {
    this.unfence(id);
    const wait = renewedFrom + Math.floor((this.h.leaseMs * 2) / 3) - Date.now();
    const timer = setTimeout(
      () => {
        this.fences.delete(id);
        this.h.logger.warn('lease not renewed in time; stopping the task', { taskId: id });
        this.h.lost(id);
      },
      Math.max(0, wait),
    );
    this.fences.set(id, timer);
  }

  /** The task no longer runs here. */
  unfence(id: string): void {
    clearTimeout(this.fences.get(id));
    this.fences.delete(id);
  }

  private async beat(): Promise<void> {
    const ids = this.h.heldIds();
    if (ids.length === 0) return;
    const sentAt = Date.now();
    try {
      const held = new Set(await renewLeases(this.h.db, this.h.owner, ids, this.h.leaseMs));
      for (const id of ids) {
        if (!held.has(id)) this.h.lost(id);
        else if (this.h.isRunning(id)) this.fence(id, sentAt);
      }
      for (const id of await findCancelRequested(this.h.db, ids)) this.h.cancelled(id);
    } catch (err) {
      this.h.logger.warn('heartbeat failed', { err });
    }
  }
}
