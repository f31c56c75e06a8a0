/**
 * The one shape every backend reports a turn's activity in (ACP `session/update`, the headless
 * JSON lines, opencode serve's events), for the task's transcript and its "now doing" line. A
 * backend calls its `onEvent` as things happen; src/transcripts/ stores them. Everything here
 * comes from the agent, so the constructors cap every string: a chatty (or hostile) agent cannot
 * grow one event without bound.
 */

/** How a tool call stands: ACP's statuses, which the other backends' are mapped onto. */
export type ToolStatus = 'pending' | 'in_progress' | 'completed' | 'failed';

export interface ToolEvent {
  kind: 'tool';
  /** The agent's id for the call: later events with the same id update it. */
  id: string;
  /** ACP's tool kinds (read, edit, delete, move, search, execute, think, fetch, other) or the agent's tool name. */
  toolKind?: string;
  title?: string;
  paths?: string[];
  command?: string;
  status?: ToolStatus;
  exitCode?: number;
}

export type AgentEvent =
  | { kind: 'message'; text: string }
  | { kind: 'thought'; text: string }
  | { kind: 'plan'; entries: { content: string; status: string }[] }
  | ToolEvent
  | { kind: 'permission'; title: string; toolKind?: string; paths?: string[]; outcome?: string }
  | { kind: 'usage'; inputTokens?: number; outputTokens?: number; cost?: number; currency?: string }
  | { kind: 'error'; message: string };

/** Receives a turn's events in order. It must not throw and must not block (it is called inline). */
export type AgentEventSink = (event: AgentEvent) => void;

/** Per string field of an event; message text is coalesced and capped by the recorder instead. */
export const MAX_EVENT_FIELD_CHARS = 2000;
const MAX_PATHS = 20;
const MAX_PLAN_ENTRIES = 50;

export const str = (v: unknown, max = MAX_EVENT_FIELD_CHARS): string | undefined =>
  typeof v === 'string' && v !== '' ? v.slice(0, max) : undefined;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A tool event with only the fields that hold something, each capped. */
export function toolEvent(f: {
  id: unknown;
  toolKind?: unknown;
  title?: unknown;
  paths?: unknown[];
  command?: unknown;
  status?: ToolStatus | undefined;
  exitCode?: unknown;
}): ToolEvent | undefined {
  const id = str(f.id, 200);
  if (!id) return undefined;
  const event: ToolEvent = { kind: 'tool', id };
  const toolKind = str(f.toolKind, 100);
  if (toolKind) event.toolKind = toolKind;
  const title = str(f.title);
  if (title) event.title = title;
  const paths = (f.paths ?? []).flatMap((p) => str(p) ?? []).slice(0, MAX_PATHS);
  if (paths.length > 0) event.paths = paths;
  const command = commandOf(f.command);
  if (command) event.command = command;
  if (f.status) event.status = f.status;
  if (typeof f.exitCode === 'number' && Number.isInteger(f.exitCode)) event.exitCode = f.exitCode;
  return event;
}

/** A command given as a string or as argv. */
function commandOf(v: unknown): string | undefined {
  if (Array.isArray(v)) return str(v.filter((a) => typeof a === 'string').join(' '));
  return str(v);
}

export function planEvent(entries: unknown): AgentEvent | undefined {
  if (!Array.isArray(entries)) return undefined;
  const kept = entries.slice(0, MAX_PLAN_ENTRIES).flatMap((e) => {
    const content = isObject(e) ? str(e.content) : undefined;
    return content ? [{ content, status: str(isObject(e) ? e.status : undefined, 40) ?? 'pending' }] : [];
  });
  return kept.length > 0 ? { kind: 'plan', entries: kept } : undefined;
}

export function errorEvent(message: unknown): AgentEvent | undefined {
  const text = str(message);
  return text ? { kind: 'error', message: text } : undefined;
}

/** Agents are not trusted to send sane numbers: anything but a finite non-negative number is dropped. */
export function usageEvent(u: {
  inputTokens?: unknown;
  outputTokens?: unknown;
  cost?: unknown;
  currency?: unknown;
}): AgentEvent | undefined {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
  const event: AgentEvent & { kind: 'usage' } = { kind: 'usage' };
  const input = n(u.inputTokens);
  const output = n(u.outputTokens);
  const cost = n(u.cost);
  if (input !== undefined) event.inputTokens = Math.round(input);
  if (output !== undefined) event.outputTokens = Math.round(output);
  if (cost !== undefined) {
    event.cost = cost;
    event.currency = str(u.currency, 16) ?? 'USD';
  }
  return Object.keys(event).length > 1 ? event : undefined;
}

/** Calls `sink` and keeps a failing one from breaking the backend that reports to it. */
export function emitTo(sink: AgentEventSink | undefined, event: AgentEvent | undefined): void {
  if (!sink || !event) return;
  try {
    sink(event);
  } catch {
    // A transcript is a record, not part of the turn: losing one event must not fail the task.
  }
}
