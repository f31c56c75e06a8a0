/**
 * Wakes callers waiting for a task to finish. `tasks_done` is NOTIFYed with the task id when a task
 * reaches a final state (src/db/channels.ts); one LISTEN per process fans it out. A notification is only a
 * hint: waiters also re-read the row on a slow timer.
 *
 * Activity listeners (resource subscriptions, log messages, list_inbox's wait) also hear a task's
 * start and the review of its changes (`task_activity`), from any process on the database.
 */
import { TASK_ACTIVITY_CHANNEL, TASKS_DONE_CHANNEL } from '../db/channels.js';
import type { Db } from '../db/db.js';

/**
 * What happened to a task: it started, it ended or blocked (`done`), or changes of it were reviewed.
 * `taskId` is empty after the LISTEN connection reconnected: anything may have been missed.
 */
export interface TaskActivity {
  taskId: string;
  what: 'started' | 'done' | 'reviewed' | 'unknown';
}
export type TaskActivityListener = (activity: TaskActivity) => void;

export class TaskEvents {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly activityListeners = new Set<TaskActivityListener>();
  private unlisten: (() => Promise<void>)[] = [];

  async start(db: Db): Promise<void> {
    this.unlisten.push(await db.listen(TASKS_DONE_CHANNEL, (payload) => this.wake(payload)));
    this.unlisten.push(await db.listen(TASK_ACTIVITY_CHANNEL, (payload) => this.activity(payload)));
  }

  /** Calls `listener` on every task activity until the returned function is called. */
  onActivity(listener: TaskActivityListener): () => void {
    this.activityListeners.add(listener);
    return () => this.activityListeners.delete(listener);
  }

  /** Resolves on the next task activity, or after `ms`, whichever is first. */
  waitForActivity(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        stop();
        resolve();
      };
      const stop = this.onActivity(done);
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private activity(payload: string): void {
    const colon = payload.indexOf(':');
    const what = payload.slice(0, colon);
    if (what === 'started' || what === 'reviewed') this.tell({ taskId: payload.slice(colon + 1), what });
    else this.tell({ taskId: '', what: 'unknown' });
  }

  private tell(activity: TaskActivity): void {
    for (const listener of [...this.activityListeners]) {
      try {
        listener(activity);
      } catch {
        // One connection's failing listener must not keep the others from hearing.
      }
    }
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
    this.tell(payload === '' ? { taskId: '', what: 'unknown' } : { taskId: payload, what: 'done' });
    if (payload === '') {
      // A reconnect of the LISTEN connection: anything may have been missed, wake everyone.
      for (const set of [...this.waiters.values()]) for (const w of [...set]) w();
      return;
    }
    for (const w of [...(this.waiters.get(payload) ?? [])]) w();
  }

  async stop(): Promise<void> {
    for (const unlisten of this.unlisten.splice(0)) await unlisten();
    this.activityListeners.clear();
  }
}
