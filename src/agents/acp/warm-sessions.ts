/**
 * Warm agent sessions: one live agent process and ACP session per (chat, agent), kept after a task
 * so the chat's next task for that agent skips the agent's start-up and keeps its conversation.
 * A different config hash (agent, command, model, cwd) replaces a session; a dead process is never
 * reused. Owned by the app, which closes them all on shutdown.
 *
 * Bounded, because a warm agent holds hundreds of MB (opencode acp: 460-700 MB) and most chats
 * never get a follow-up: a chat that has had one task keeps its agent for firstIdleMs only, one
 * with follow-ups for idleMs; and past maxWarm processes, or maxMemoryBytes resident in all of
 * them, the least recently used idle ones are closed. Busy ones are never closed for the cap.
 */
import type { Logger } from '../../log.js';
import { processGroupsMemoryBytes } from '../process-memory.js';
import type { AcpSession } from './session.js';

export interface WarmKey {
  chatId: string;
  agent: string;
}

/** Why a pooled session went away while idle: the app records it on agent_sessions. */
export type WarmGoneReason = 'closed' | 'crashed';

export interface WarmSessionsOptions {
  /** How long a chat that has had follow-ups keeps its idle agent. */
  idleMs: number;
  /** How long a chat that has had one task keeps its idle agent (default, and at most, idleMs). */
  firstIdleMs?: number;
  /** Most live pooled processes, busy or idle (default: no bound). */
  maxWarm?: number;
  /** Most bytes resident in all pooled processes together, where /proc tells (0 or absent: no bound). */
  maxMemoryBytes?: number;
  /** Resident bytes per process group leader (tests); default reads /proc. */
  readMemory?: (pids: readonly number[]) => Map<number, number>;
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
  /** Tasks run on this process. */
  tasksRun: number;
  /** When the last task on it ended (or began, while busy). */
  lastUsed: number;
  /** Order of last use (the clock can tie): the lowest is the least recently used, closed first. */
  useSeq: number;
  idleTimer?: NodeJS.Timeout;
}

/** One pooled agent, as `boocoder status` shows it. */
export interface WarmAgentInfo {
  agent: string;
  chatId: string;
  pid?: number;
  memoryBytes?: number;
  /** 0 while a task runs on it. */
  idleMs: number;
  tasksRun: number;
}

/** Chats remembered as having had follow-ups; the oldest are forgotten beyond this. */
const MAX_REMEMBERED_CHATS = 10_000;

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
  /** Tasks acquired per (chat, agent), outliving the process: a follow-up after expiry still counts. */
  private readonly chatTasks = new Map<string, number>();
  private uses = 0;

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
    this.countTask(id);
    const entry = this.entries.get(id);
    if (entry && !entry.busy) {
      clearTimeout(entry.idleTimer);
      if (entry.session.alive && entry.configHash === configHash) {
        entry.busy = true;
        entry.tasksRun += 1;
        entry.lastUsed = Date.now();
        entry.useSeq = ++this.uses;
        return { session: entry.session, reused: true };
      }
      this.entries.delete(id);
      this.o.logger.debug('warm session replaced', { ...key, alive: entry.session.alive });
      await entry.session.close();
    }
    // Room first: the new process would otherwise take the pool past its bound until release.
    await this.recorded(() => this.closeOverCap(1));
    const session = await open();
    if (!session) return undefined;
    if (this.closed) {
      await session.close();
      return undefined;
    }
    if (!this.entries.has(id))
      this.track(id, {
        key,
        session,
        configHash,
        busy: true,
        tasksRun: 1,
        lastUsed: Date.now(),
        useSeq: ++this.uses,
      });
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
    entry.lastUsed = Date.now();
    entry.useSeq = ++this.uses;
    const followedUp = (this.chatTasks.get(id) ?? 0) > 1;
    entry.idleTimer = setTimeout(
      () => void this.recorded(() => this.expire(id, entry)),
      // A brief stay is never longer than the long one: a short BOOCODER_AGENT_IDLE_MS bounds both.
      Math.min(
        followedUp ? this.o.idleMs : (this.o.firstIdleMs ?? this.o.idleMs),
        this.o.idleMs,
        2 ** 31 - 1,
      ),
    );
    entry.idleTimer.unref();
    await this.recorded(() => this.closeOverCap(0));
  }

  /** The pooled agents, most recently used first, with their memory where /proc tells. */
  listWarmAgents(): WarmAgentInfo[] {
    const entries = [...this.entries.values()].sort((a, b) => b.useSeq - a.useSeq);
    const memory = this.memoryOf(entries);
    const now = Date.now();
    return entries.map((e) => {
      const pid = e.session.pid;
      const memoryBytes = memory.get(pid);
      return {
        agent: e.key.agent,
        chatId: e.key.chatId,
        ...(pid !== undefined ? { pid } : {}),
        ...(memoryBytes !== undefined ? { memoryBytes } : {}),
        idleMs: e.busy ? 0 : Math.max(0, now - e.lastUsed),
        tasksRun: e.tasksRun,
      };
    });
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

  private countTask(id: string): void {
    const n = (this.chatTasks.get(id) ?? 0) + 1;
    this.chatTasks.delete(id); // re-inserted last: the Map's order is then least recent first
    this.chatTasks.set(id, n);
    if (this.chatTasks.size > MAX_REMEMBERED_CHATS) {
      const oldest = this.chatTasks.keys().next().value;
      if (oldest !== undefined) this.chatTasks.delete(oldest);
    }
  }

  private memoryOf(entries: readonly Entry[]): Map<number, number> {
    const read = this.o.readMemory ?? processGroupsMemoryBytes;
    return read(entries.map((e) => e.session.pid).filter((p): p is number => p !== undefined));
  }

  /**
   * Closes least recently used idle sessions until `extra` more processes fit under maxWarm and
   * the pool's resident memory is under maxMemoryBytes (busy sessions count but are never closed).
   */
  private async closeOverCap(extra: number): Promise<void> {
    const maxWarm = this.o.maxWarm ?? Number.POSITIVE_INFINITY;
    const maxMemory = this.o.maxMemoryBytes ?? 0;
    const idle = [...this.entries.values()].filter((e) => !e.busy).sort((a, b) => a.useSeq - b.useSeq);
    let count = this.entries.size + extra;
    let memory = 0;
    let memoryOf = new Map<number, number>();
    if (maxMemory > 0) {
      memoryOf = this.memoryOf([...this.entries.values()]);
      for (const bytes of memoryOf.values()) memory += bytes;
    }
    for (const e of idle) {
      if (count <= maxWarm && (maxMemory <= 0 || memory <= maxMemory)) break;
      count -= 1;
      memory -= memoryOf.get(e.session.pid) ?? 0;
      this.o.logger.info('warm agent closed to stay within the warm-agent cap', {
        ...e.key,
        pid: e.session.pid,
      });
      await this.expire(keyOf(e.key), e);
    }
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
    clearTimeout(entry.idleTimer);
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
