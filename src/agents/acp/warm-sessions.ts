/**
 * Warm agent sessions: one live agent process and ACP session per (chat, agent), kept after a task
 * so the chat's next task for that agent skips the agent's start-up and keeps its conversation.
 * An idle session is closed after idleMs; a different config hash (agent, command, model, cwd)
 * replaces it; a dead process is never reused. Owned by the app, which closes them all on shutdown.
 */
import type { Logger } from '../../log.js';
import type { AcpSession } from './session.js';

export interface WarmKey {
  chatId: string;
  agent: string;
}

/** Why a pooled session went away while idle: the app records it on agent_sessions. */
export type WarmGoneReason = 'closed' | 'crashed';

export interface WarmSessionsOptions {
  idleMs: number;
  logger: Logger;
  /** Called when an idle pooled session is closed or its process dies. Errors are logged. */
  onGone?: (key: WarmKey, reason: WarmGoneReason) => Promise<void>;
}

interface Entry {
  key: WarmKey;
  session: AcpSession;
  configHash: string;
  /** True while a task uses it: a concurrent task in the same chat opens its own session. */
  busy: boolean;
  idleTimer?: NodeJS.Timeout;
}

export interface WarmLease {
  session: AcpSession;
  /** True when the session was already running before this task. */
  reused: boolean;
}

const keyOf = (k: WarmKey) => JSON.stringify([k.chatId, k.agent]);

export class WarmSessions {
  private readonly entries = new Map<string, Entry>();
  private closed = false;
  /** Deaths and expiries still being recorded: closeAll waits for them before the db closes. */
  private readonly recording = new Set<Promise<void>>();
  /** Pooled sessions whose process died during a task: release() records how they ended. */
  private readonly diedWhileBusy = new WeakSet<AcpSession>();

  constructor(private readonly o: WarmSessionsOptions) {}

  /**
   * The live idle session for `key` when its config hash matches, else a new one from `open`
   * (undefined when open was cancelled). Release it with release() when the task is done.
   */
  async acquire(
    key: WarmKey,
    configHash: string,
    open: () => Promise<AcpSession | undefined>,
  ): Promise<WarmLease | undefined> {
    const id = keyOf(key);
    const entry = this.entries.get(id);
    if (entry && !entry.busy) {
      clearTimeout(entry.idleTimer);
      if (entry.session.alive && entry.configHash === configHash) {
        entry.busy = true;
        return { session: entry.session, reused: true };
      }
      this.entries.delete(id);
      this.o.logger.debug('warm session replaced', { ...key, alive: entry.session.alive });
      await entry.session.close();
    }
    const session = await open();
    if (!session) return undefined;
    if (this.closed) {
      await session.close();
      return undefined;
    }
    if (!this.entries.has(id)) this.track(id, { key, session, configHash, busy: true });
    return { session, reused: false };
  }

  /**
   * Ends a task's use of `session`, once the task's result is recorded: kept warm while alive and
   * pooled, closed otherwise. A pooled session that ended during the task is reported to onGone.
   */
  async release(key: WarmKey, session: AcpSession): Promise<void> {
    const id = keyOf(key);
    const entry = this.entries.get(id);
    const pooled = entry?.session === session;
    if (!entry || !pooled || this.closed || !session.alive) {
      if (pooled) this.entries.delete(id);
      const ended = pooled || this.diedWhileBusy.delete(session);
      await session.close();
      if (ended && !this.closed) await this.notify(key, session.crashed ? 'crashed' : 'closed');
      return;
    }
    entry.busy = false;
    entry.idleTimer = setTimeout(
      () => void this.recorded(() => this.expire(id, entry)),
      Math.min(this.o.idleMs, 2 ** 31 - 1),
    );
    entry.idleTimer.unref();
  }

  /** Closes every session, busy or not, for shutdown: an acquire after this gets no session. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) clearTimeout(e.idleTimer);
    await Promise.all(all.map((e) => e.session.close()));
    // Nothing keeps them after shutdown: a restarted server must not report them as idle.
    await Promise.all(all.map((e) => this.notify(e.key, 'closed')));
    await Promise.all(this.recording);
  }

  /** How many sessions are pooled (busy or idle). */
  get size(): number {
    return this.entries.size;
  }

  private track(id: string, entry: Entry): void {
    this.entries.set(id, entry);
    // A process that dies while idle must not be handed to the next task; record it as crashed.
    void entry.session.exited.then(() =>
      this.recorded(async () => {
        if (this.entries.get(id) !== entry) return;
        this.entries.delete(id);
        clearTimeout(entry.idleTimer);
        await entry.session.close();
        if (entry.busy) this.diedWhileBusy.add(entry.session);
        else await this.notify(entry.key, 'crashed');
      }),
    );
  }

  private recorded(work: () => Promise<void>): Promise<void> {
    const p = work().finally(() => this.recording.delete(p));
    this.recording.add(p);
    return p;
  }

  private async expire(id: string, entry: Entry): Promise<void> {
    if (this.entries.get(id) !== entry || entry.busy) return;
    this.entries.delete(id);
    this.o.logger.debug('warm session idle, closing', { ...entry.key, pid: entry.session.pid });
    await entry.session.close();
    await this.notify(entry.key, 'closed');
  }

  private async notify(key: WarmKey, reason: WarmGoneReason): Promise<void> {
    try {
      await this.o.onGone?.(key, reason);
    } catch (err) {
      this.o.logger.warn('could not record the end of a warm session', { ...key, reason, err });
    }
  }
}
