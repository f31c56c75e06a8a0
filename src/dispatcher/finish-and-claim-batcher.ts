/**
 * Sends a dispatcher's finishes and claims to the database as finishAndClaimTasks statements: a
 * finished task's slot is refilled in the round trip that records its end, and whatever queues
 * while a statement is in flight rides in the next one.
 */
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import { type ClaimedTasks, finishAndClaimTasks, type TaskFinish } from '../db/task-claims.js';
import type { TaskOutcome } from '../db/tasks.js';
import type { Logger } from '../log.js';

/** What the batcher needs from its dispatcher. */
export interface DispatcherSlots {
  db: Db;
  logger: Logger;
  owner: string;
  leaseMs: number;
  /** Claims only tasks of projects on this machine (FinishAndClaim.machineId). */
  machineId?: string;
  /** How many tasks the dispatcher may hold now: its slots, plus those it may claim ahead. */
  capacity(): number;
  /** Tasks held (running, or claimed ahead) whose end is not recorded yet, and reserved slots. */
  usedSlots(): number;
  /** True once the dispatcher stops claiming; finishes are still recorded. */
  stopping(): boolean;
  /** The task's end is recorded: its slot is free. */
  freed(id: string): void;
  /** Tasks just claimed, in seq order, each into a free slot. */
  claimed(tasks: Task[]): Promise<void> | void;
}

interface QueuedFinish extends TaskFinish {
  settle(finished: boolean): void;
  fail(err: unknown): void;
}

interface Statement {
  finishes: QueuedFinish[];
  claim: boolean;
  /** Slots to claim into besides those the finishes free. */
  freeSlots: number;
}

/** Errors of a claim that lost a race to another dispatcher's: sending the statement again succeeds. */
const CLAIM_RACE_CODES = new Set(['23505', '40P01']);

/**
 * One statement in flight at a time: whatever queues meanwhile (finishes, wakes) waits at most one
 * round trip and shares the next statement, so a busy dispatcher sends few, full statements.
 */
export class FinishAndClaimBatcher {
  private queue: QueuedFinish[] = [];
  /** A slot may be free and a task claimable: a claim is sent even without finishes. */
  private claimWanted = false;
  private pumpScheduled = false;
  private sending: Promise<void> | undefined;
  /**
   * Free slots the statement in flight may claim into (besides the slots its finishes free), until
   * its claimed tasks have taken them: a slot reserved for a claiming insert meanwhile (Dispatcher
   * reserveSlot) must not be one of them, or the dispatcher would run more tasks than it has slots.
   */
  claimingSlots = 0;

  constructor(private readonly d: DispatcherSlots) {}

  /** Claims into the free slots soon; calls while a claim is in flight coalesce into one more claim. */
  wantClaim(): void {
    this.claimWanted = true;
    this.schedulePump();
  }

  /** Records a task's end (false when this owner no longer holds it) and refills its slot. */
  finish(id: string, outcome: TaskOutcome): Promise<boolean> {
    return new Promise((settle, fail) => {
      this.queue.push({ id, outcome, settle, fail });
      this.schedulePump();
    });
  }

  /** Resolves once no statement is in flight or about to be sent. */
  async settle(): Promise<void> {
    while (this.sending || this.pumpScheduled) await Promise.allSettled([this.sending]);
  }

  /** Pumps once the current turn is over: the finishes of runners started together share a statement. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.sending) return;
    const statement = this.nextStatement();
    if (!statement) return;
    this.claimingSlots = statement.freeSlots;
    this.sending = this.send(statement).finally(() => {
      this.claimingSlots = 0;
      this.sending = undefined;
      this.pump();
    });
  }

  /**
   * Every queued finish, with a claim for the slots they free and, when woken, for the free slots.
   * A claim without finishes goes only when woken (or when the last claim found as many candidates
   * as slots): an idle dispatcher woken for one task makes one round trip, and a finish whose
   * statement found nothing more to claim makes no second one.
   */
  private nextStatement(): Statement | undefined {
    const stopping = this.d.stopping();
    const free = this.d.capacity() - this.d.usedSlots();
    const claimFree = this.claimWanted && free > 0 && !stopping;
    if (this.queue.length === 0 && !claimFree) return undefined;
    if (claimFree) this.claimWanted = false;
    return { finishes: this.queue.splice(0), claim: !stopping, freeSlots: claimFree ? free : 0 };
  }

  private async send(s: Statement): Promise<void> {
    let result: ClaimedTasks;
    try {
      result = await finishAndClaimTasks(this.d.db, this.d.owner, this.d.leaseMs, {
        finishes: s.finishes,
        claim: s.claim,
        freeSlots: s.freeSlots,
        machineId: this.d.machineId,
      });
    } catch (err) {
      // 23505: another dispatcher started a task of the same session at the same instant (that
      // session is now excluded); 40P01: two claims deadlocked on one. Both go again at once.
      // Anything else (database down): the runners hear of it, claims wait for a wake or the poll.
      if (CLAIM_RACE_CODES.has((err as { code?: string }).code ?? '')) {
        this.queue.unshift(...s.finishes);
        if (s.freeSlots > 0) this.claimWanted = true;
      } else {
        this.d.logger.warn('claim failed', { err });
        for (const f of s.finishes) f.fail(err);
      }
      return;
    }
    const finished = new Set(result.finished);
    for (const f of s.finishes) if (finished.has(f.id)) this.d.freed(f.id);
    await this.d.claimed(result.tasks);
    for (const f of s.finishes) f.settle(finished.has(f.id));
    if (result.more) this.claimWanted = true;
  }
}
