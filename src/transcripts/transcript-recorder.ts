/**
 * Records one task attempt's agent events (agent-events.ts) as its transcript, without slowing the
 * agent or the queue: events are buffered in memory and written in batches (one statement per
 * flush: every FLUSH_MS while events come, at once past FLUSH_EVENTS, and at the end of the turn),
 * text chunks are coalesced into one event, and a tool call's updates are merged while unwritten.
 * A write that fails is logged and dropped: a transcript must never fail its task.
 *
 * Bounded: a transcript keeps its first `head` and last `tail` events; the middle is cut (readers
 * see the gap in seq and say so), and each text event holds at most `maxTextChars`.
 */
import type { AgentEvent, AgentEventSink, ToolEvent } from '../agents/agent-events.js';
import type { Db } from '../db/db.js';
import { lastTaskEventSeq, type TaskEventRow, writeTaskEvents } from '../db/task-events.js';
import type { Logger } from '../log.js';
import { nowDoingOf } from './now-doing.js';

export interface TranscriptLimits {
  head: number;
  tail: number;
  maxTextChars: number;
}

export const DEFAULT_TRANSCRIPT_LIMITS: TranscriptLimits = { head: 500, tail: 500, maxTextChars: 8000 };
const FLUSH_MS = 500;
const FLUSH_EVENTS = 100;
/** Tool calls remembered to merge later updates into (an agent may make thousands). */
const MAX_TRACKED_TOOLS = 200;

type Data = Record<string, unknown>;

export interface TranscriptRecorderOptions {
  db: Db;
  taskId: string;
  /** The task's worktree: paths and commands under it are shown relative to it. */
  cwd: string;
  logger: Logger;
  limits?: TranscriptLimits;
}

export class TranscriptRecorder {
  private seq: number;
  private buffer: TaskEventRow[] = [];
  /** The last buffered row when it is text that the next chunk of the same kind extends. */
  private openText: TaskEventRow | undefined;
  private readonly tools = new Map<string, { merged: ToolEvent; row: TaskEventRow | undefined }>();
  private nowDoing: string | undefined;
  private nowDoingWritten: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly limits: TranscriptLimits;

  private constructor(
    private readonly o: TranscriptRecorderOptions,
    lastSeq: number,
  ) {
    this.seq = lastSeq;
    this.limits = o.limits ?? DEFAULT_TRANSCRIPT_LIMITS;
  }

  /** A recorder continuing after what earlier attempts of the task stored. */
  static async start(o: TranscriptRecorderOptions): Promise<TranscriptRecorder> {
    return new TranscriptRecorder(o, await lastTaskEventSeq(o.db, o.taskId));
  }

  readonly onEvent: AgentEventSink = (event) => {
    const e = this.relative(event);
    if (e.kind === 'message' || e.kind === 'thought') this.addText(e.kind, e.text);
    else if (e.kind === 'tool') this.addTool(e);
    else this.push(e.kind, withoutKind(e));
    const doing = nowDoingOf(e, e.kind === 'tool' ? this.tools.get(e.id)?.merged : undefined);
    if (doing !== undefined) this.nowDoing = doing;
    if (this.buffer.length >= FLUSH_EVENTS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  };

  /** Writes what is buffered (after any write in flight). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    this.openText = undefined;
    for (const tool of this.tools.values()) tool.row = undefined;
    const nowDoing = this.nowDoing !== this.nowDoingWritten ? this.nowDoing : undefined;
    this.nowDoingWritten = this.nowDoing;
    if (batch.length === 0 && nowDoing === undefined) return this.writing;
    this.writing = this.writing.then(() => this.write(batch, nowDoing));
    return this.writing;
  }

  /** The end of the attempt: everything buffered is written before it resolves. */
  close(): Promise<void> {
    return this.flush();
  }

  private async write(batch: TaskEventRow[], nowDoing: string | undefined): Promise<void> {
    const { head, tail } = this.limits;
    const cutTo = this.seq - tail;
    const cut = cutTo > head ? { from: head, to: cutTo } : undefined;
    const events = cut ? batch.filter((e) => e.seq <= cut.from || e.seq > cut.to) : batch;
    try {
      await writeTaskEvents(this.o.db, this.o.taskId, {
        events,
        ...(cut ? { cut } : {}),
        ...(nowDoing !== undefined ? { nowDoing } : {}),
      });
    } catch (err) {
      this.o.logger.warn('transcript events not recorded', {
        taskId: this.o.taskId,
        events: batch.length,
        err,
      });
    }
  }

  private push(kind: string, data: Data): TaskEventRow {
    this.seq += 1;
    const row = { seq: this.seq, kind, data, createdAt: new Date() };
    this.buffer.push(row);
    this.openText = undefined;
    return row;
  }

  private addText(kind: 'message' | 'thought', text: string): void {
    const open = this.openText;
    const max = this.limits.maxTextChars;
    if (open && open.kind === kind) {
      const before = String(open.data.text);
      if (before.length < max) {
        open.data.text = before + text.slice(0, max - before.length);
        if (before.length + text.length > max) open.data.truncated = true;
      }
      return;
    }
    const row = this.push(kind, {
      text: text.slice(0, max),
      ...(text.length > max ? { truncated: true } : {}),
    });
    this.openText = row;
  }

  /** A call's update merges into its unwritten row; once written, the update is a row of its own. */
  private addTool(e: ToolEvent): void {
    const known = this.tools.get(e.id);
    const merged: ToolEvent = { ...known?.merged, ...e };
    if (known?.row) {
      known.row.data = withoutKind(merged);
      known.merged = merged;
      this.openText = undefined;
      return;
    }
    const row = this.push('tool', withoutKind(merged));
    this.tools.delete(e.id);
    this.tools.set(e.id, { merged, row });
    if (this.tools.size > MAX_TRACKED_TOOLS) this.tools.delete(this.tools.keys().next().value as string);
  }

  /** Paths and commands under the worktree, relative to it: the host layout is nobody's business. */
  private relative(e: AgentEvent): AgentEvent {
    if (e.kind !== 'tool' && e.kind !== 'permission') return e;
    const root = `${this.o.cwd}/`;
    const strip = (s: string) => s.split(root).join('').split(this.o.cwd).join('.');
    const out: AgentEvent = { ...e };
    if (out.paths) out.paths = out.paths.map(strip);
    if (out.title) out.title = strip(out.title);
    if (out.kind === 'tool' && out.command) out.command = strip(out.command);
    return out;
  }
}

function withoutKind(e: AgentEvent): Data {
  const { kind: _kind, ...data } = e;
  return data;
}
