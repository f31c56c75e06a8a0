/**
 * What boocoder reads from `opencode serve`'s event stream (GET /global/event, server-sent events
 * for every directory the server works in) and how one prompt turn is accounted from it. Pure: no
 * I/O, so the accounting rules are unit-testable; server.ts does the HTTP.
 *
 * Observed on opencode 1.18.33 (a turn): message.updated (the user message), message.part.updated
 * (its text), session.status busy, then per model call a new assistant message (message.updated,
 * parentID = the user message) whose parts end with a `step-finish` part carrying that call's
 * tokens and cost, and finally session.status idle + session.idle. Errors come as session.error
 * (MessageAbortedError after POST /abort) followed by session.idle. `session.next.step.ended` is in
 * the schema but was never emitted; it is counted if it comes, for a message with no step-finish.
 */
import type { TurnStopReason, TurnUsage } from '../agent-backend.js';

export interface ServeEvent {
  type: string;
  properties: Record<string, unknown>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** The server is not trusted to send sane numbers: NaN, negatives and fractions become counts. */
const count = (v: unknown): number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : 0;
const money = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

/**
 * Splits a server-sent-event stream into the `data` of its events. Bounded: an event that never
 * ends would otherwise grow the buffer until the server's memory is gone.
 */
export class SseDecoder {
  private buffer = '';

  constructor(private readonly maxEventChars: number) {}

  /** The data of every event completed by `text`; throws when one event outgrows the bound. */
  push(text: string): string[] {
    this.buffer += text;
    const blocks = this.buffer.split(/\r?\n\r?\n/);
    this.buffer = blocks.pop() ?? '';
    if (this.buffer.length > this.maxEventChars) throw new Error('server-sent event too large');
    return blocks.flatMap((block) => {
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      return data.length > 0 ? [data.join('\n')] : [];
    });
  }
}

/** One /global/event payload, or undefined for noise (bad JSON, `sync` replicas of other events). */
export function parseServeEvent(data: string): ServeEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return undefined;
  }
  const payload = isObject(parsed) ? parsed.payload : undefined;
  if (!isObject(payload)) return undefined;
  const type = str(payload.type);
  if (!type || type === 'sync') return undefined;
  return { type, properties: isObject(payload.properties) ? payload.properties : {} };
}

/** What the driver must do after an event; the record itself does no I/O. */
export type TurnAction =
  | { kind: 'busy' }
  | { kind: 'idle' }
  /** A `permission.asked` payload: permissions.ts answers it. */
  | { kind: 'permission'; request: Json }
  | { kind: 'question'; id: string };

export interface TurnError {
  name: string;
  message: string;
}

interface StepUsage {
  messageId: string;
  tokens: Json;
  cost: unknown;
}

/**
 * One prompt turn of one opencode session (the root) and the subagent sessions it starts. Only
 * messages created since the prompt was sent count, so late events of an earlier turn (opencode
 * re-sends a user message with its diff summary after a turn, and an aborted step's last update)
 * are not taken for this one's.
 */
export class OpencodeTurnRecord {
  readonly sessions: Set<string>;
  /** True once the root session went busy: an idle before that ends nothing (see server.ts). */
  started = false;
  updates = 0;
  error: TurnError | undefined;
  private readonly userMessages = new Set<string>();
  private readonly assistantMessages = new Set<string>();
  private readonly texts = new Map<string, { sessionId: string; messageId: string; text: string }>();
  private readonly steps = new Map<string, StepUsage>();
  private readonly endedSteps = new Map<string, StepUsage>();

  /**
   * `since`: this machine's clock (ms) just before the prompt was sent; the server runs here too.
   * `maxOutputChars` also caps each text kept, so a chatty (or hostile) agent cannot grow it unbounded.
   */
  constructor(
    readonly root: string,
    private readonly since: number,
    private readonly maxOutputChars: number,
  ) {
    this.sessions = new Set([root]);
  }

  /** True when `event` is about this turn's sessions. */
  concerns(event: ServeEvent): boolean {
    const p = event.properties;
    const info = isObject(p.info) ? p.info : undefined;
    const part = isObject(p.part) ? p.part : undefined;
    const id = str(p.sessionID) ?? str(part?.sessionID) ?? str(info?.sessionID);
    return (id !== undefined && this.sessions.has(id)) || this.isChildCreation(event);
  }

  apply(event: ServeEvent): TurnAction | undefined {
    if (!this.concerns(event)) return undefined;
    this.updates += 1;
    const p = event.properties;
    const root = p.sessionID === this.root;
    switch (event.type) {
      case 'session.created':
        if (this.isChildCreation(event)) this.sessions.add(str((p.info as Json).id) as string);
        return undefined;
      case 'session.status':
        return root && this.isBusy(p.status) ? this.markStarted() : undefined;
      case 'session.idle':
        return root && this.started ? { kind: 'idle' } : undefined;
      case 'session.error':
        if (root) this.recordError(p.error);
        return undefined;
      case 'message.updated':
        this.recordMessage(p.info);
        return undefined;
      case 'message.part.updated':
        this.recordPart(p.part);
        return undefined;
      case 'session.next.step.ended':
        this.recordEndedStep(p);
        return undefined;
      case 'permission.asked':
        return { kind: 'permission', request: p };
      case 'question.asked':
        return { kind: 'question', id: str(p.id) ?? '' };
      default:
        return undefined;
    }
  }

  /** The root's assistant text of this turn, in order, capped at maxOutputChars. */
  output(): { text: string; truncated: boolean } {
    const maxChars = this.maxOutputChars;
    const full = [...this.texts.values()]
      .filter((t) => t.sessionId === this.root && this.assistantMessages.has(t.messageId) && t.text !== '')
      .map((t) => t.text)
      .join('\n');
    return { text: full.slice(0, maxChars), truncated: full.length > maxChars };
  }

  /** This turn's tokens and cost summed over its steps (subagents included). */
  usage(): TurnUsage {
    const counted = [...this.steps.values()].filter((s) => this.assistantMessages.has(s.messageId));
    const withParts = new Set(counted.map((s) => s.messageId));
    for (const [messageId, step] of this.endedSteps)
      if (this.assistantMessages.has(messageId) && !withParts.has(messageId)) counted.push(step);
    const usage: TurnUsage = { inputTokens: 0, outputTokens: 0, cost: 0, currency: 'USD' };
    for (const { tokens, cost } of counted) {
      const cache = isObject(tokens.cache) ? tokens.cache : {};
      usage.inputTokens += count(tokens.input) + count(cache.read) + count(cache.write);
      usage.outputTokens += count(tokens.output) + count(tokens.reasoning);
      usage.cost = (usage.cost ?? 0) + money(cost);
    }
    return usage;
  }

  /** How the turn ended, from its session error; undefined for an error that fails the run. */
  stopReason(): TurnStopReason | undefined {
    switch (this.error?.name) {
      case undefined:
        return 'end_turn';
      case 'MessageAbortedError':
        return 'cancelled';
      case 'MessageOutputLengthError':
        return 'max_tokens';
      case 'ContentFilterError':
        return 'refusal';
      default:
        return undefined;
    }
  }

  private isChildCreation(event: ServeEvent): boolean {
    const info = event.properties.info;
    return (
      event.type === 'session.created' &&
      isObject(info) &&
      typeof info.id === 'string' &&
      typeof info.parentID === 'string' &&
      this.sessions.has(info.parentID)
    );
  }

  private isBusy(status: unknown): boolean {
    return isObject(status) && (status.type === 'busy' || status.type === 'retry');
  }

  private markStarted(): TurnAction {
    this.started = true;
    return { kind: 'busy' };
  }

  private recordError(error: unknown): void {
    if (this.error || !isObject(error)) return;
    const data = isObject(error.data) ? error.data : {};
    this.error = {
      name: String(error.name ?? 'UnknownError').slice(0, 100),
      message: String(data.message ?? '').slice(0, 2000),
    };
  }

  private recordMessage(info: unknown): void {
    if (!isObject(info) || typeof info.id !== 'string') return;
    const created = isObject(info.time) ? info.time.created : undefined;
    if (info.role === 'user' && typeof created === 'number' && created >= this.since)
      this.userMessages.add(info.id);
    else if (info.role === 'assistant' && this.userMessages.has(str(info.parentID) ?? ''))
      this.assistantMessages.add(info.id);
  }

  private recordPart(part: unknown): void {
    if (!isObject(part) || typeof part.id !== 'string' || typeof part.messageID !== 'string') return;
    if (part.type === 'text' && typeof part.text === 'string' && part.synthetic !== true) {
      const sessionId = str(part.sessionID) ?? '';
      const text = part.text.slice(0, this.maxOutputChars + 1);
      this.texts.set(part.id, { sessionId, messageId: part.messageID, text });
    } else if (part.type === 'step-finish' && isObject(part.tokens)) {
      this.steps.set(part.id, { messageId: part.messageID, tokens: part.tokens, cost: part.cost });
    }
  }

  private recordEndedStep(p: Json): void {
    const messageId = str(p.assistantMessageID);
    if (messageId && isObject(p.tokens))
      this.endedSteps.set(messageId, { messageId, tokens: p.tokens, cost: p.cost });
  }
}
