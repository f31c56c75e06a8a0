/**
 * Wakes callers waiting for a task to finish. `tasks_done` is NOTIFYed with the task id when a task
 * reaches a final state (src/db/channels.ts); one LISTEN per process fans it out. A notification is only a
 * hint: waiters also re-read the row on a slow timer.
 */
import { TASKS_DONE_CHANNEL } from '../db/channels.js';
import type { Db } from '../db/db.js';

export class TaskEvents {
  private readonly waiters = new Map<string, Set<() => void>>();
  private unlisten: (() => Promise<void>) | undefined;

  async start(db: Db): Promise<void> {
    this.unlisten = await db.listen(TASKS_DONE_CHANNEL, (payload) => this.wake(payload));
  }

  /** Resolves when the task may have changed, or after `ms`, whichever is first. */
  waitForChange(taskId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(taskId) ?? new Set();
      this.waiters.set(taskId, set);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(taskId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private wake(payload: string): void {
    if (payload === '') {
      // A reconnect of the LISTEN connection: anything may have been missed, wake everyone.
      for (const set of [...this.waiters.values()]) for (const w of [...set]) w();
      return;
    }
    for (const w of [...(this.waiters.get(payload) ?? [])]) w();
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = undefined;
  }
}
