/**
 * Readers for the JSON lines the built-in agents print in their headless modes. Pure: each parser
 * gets one decoded line and records what it means on a HeadlessTurn (backend session id, reply
 * text, usage, end of turn). Lines come from the agent, so every field is read defensively: a line
 * of an unknown type or with fields of the wrong type is ignored, never thrown on.
 */
import { DEFAULT_MAX_OUTPUT_CHARS } from '../agent-backend.js';

export type JsonObject = Record<string, unknown>;

/** How the turn ended, as the agent reported it. `problem` is boocoder's wording, `detail` the agent's. */
export type HeadlessEnd = { ok: true } | { ok: false; problem: string; detail?: string };

export const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Agents are not trusted to send sane numbers: NaN, negatives and fractions become counts. */
function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : 0;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});
/** Agent error texts go to `details` only (they may carry host paths or prompt content): capped. */
const detailOf = (v: unknown): string | undefined => text(v)?.slice(0, 2000);

/** What one headless run reported, accumulated line by line. */
export class HeadlessTurn {
  sessionId: string | undefined;
  inputTokens = 0;
  outputTokens = 0;
  cost: number | undefined;
  end: HeadlessEnd | undefined;
  /** How many lines were understood (of a known type). */
  events = 0;
  outputTruncated = false;
  private output = '';

  constructor(private readonly maxOutputChars = DEFAULT_MAX_OUTPUT_CHARS) {}

  get outputText(): string {
    return this.output;
  }

  get hasUsage(): boolean {
    return this.inputTokens > 0 || this.outputTokens > 0 || this.cost !== undefined;
  }

  noteSession(id: unknown): void {
    if (typeof id === 'string' && id !== '') this.sessionId ??= id;
  }

  appendText(chunk: unknown): void {
    if (typeof chunk !== 'string' || chunk === '') return;
    // Cap what is kept: a chatty (or hostile) agent must not grow this without bound.
    const room = this.maxOutputChars - this.output.length;
    if (chunk.length > room) this.outputTruncated = true;
    if (room > 0) this.output += chunk.slice(0, room);
  }

  addUsage(input: number, output: number, cost?: unknown): void {
    this.inputTokens += count(input);
    this.outputTokens += count(output);
    if (typeof cost === 'number' && Number.isFinite(cost) && cost >= 0) this.cost = (this.cost ?? 0) + cost;
  }

  /** The first end reported wins: a later line cannot turn a failure into a success. */
  finish(end: HeadlessEnd): void {
    this.end ??= end;
  }
}

export type HeadlessParser = (event: JsonObject, turn: HeadlessTurn) => void;

/**
 * opencode `run --format json`: step_start, tool_use, text, step_finish (per model call: tokens
 * {input, output, reasoning, cache{read, write}} and cost), error. No end-of-turn line: a clean
 * exit ends the turn.
 */
export const parseOpencodeEvent: HeadlessParser = (e, turn) => {
  const part = obj(e.part);
  turn.noteSession(e.sessionID ?? part.sessionID);
  if (e.type === 'text') {
    turn.appendText(part.text);
  } else if (e.type === 'step_finish') {
    const tokens = obj(part.tokens);
    const cache = obj(tokens.cache);
    turn.addUsage(
      count(tokens.input) + count(cache.read) + count(cache.write),
      count(tokens.output) + count(tokens.reasoning),
      part.cost,
    );
  } else if (e.type === 'error') {
    const error = obj(e.error);
    const detail = detailOf(obj(error.data).message) ?? detailOf(error.name);
    turn.finish({ ok: false, problem: 'reported an error', ...(detail ? { detail } : {}) });
  } else if (e.type !== 'step_start' && e.type !== 'tool_use') return;
  turn.events += 1;
};

/** Claude Code `-p --output-format stream-json --verbose`: system init, assistant, user, result. */
export const parseClaudeEvent: HeadlessParser = (e, turn) => {
  if (e.type === 'system') {
    turn.noteSession(e.session_id);
  } else if (e.type === 'assistant') {
    turn.noteSession(e.session_id);
    const content = obj(e.message).content;
    for (const block of Array.isArray(content) ? content : []) {
      if (isObject(block) && block.type === 'text') turn.appendText(block.text);
    }
  } else if (e.type === 'result') {
    turn.noteSession(e.session_id);
    // The result's usage and total_cost_usd cover the whole run: Claude reports cache reads and
    // writes beside input_tokens, so they are added in.
    const u = obj(e.usage);
    turn.addUsage(
      count(u.input_tokens) + count(u.cache_read_input_tokens) + count(u.cache_creation_input_tokens),
      count(u.output_tokens),
      e.total_cost_usd,
    );
    // subtype is "success" even for an API error: is_error is what tells.
    if (e.is_error === false) turn.finish({ ok: true });
    else {
      const detail = detailOf(e.result) ?? detailOf(e.subtype);
      turn.finish({ ok: false, problem: 'reported an error', ...(detail ? { detail } : {}) });
    }
  } else if (e.type !== 'user') return;
  turn.events += 1;
};

/**
 * Codex `exec --json`: thread.started, turn.started, item.started/updated/completed,
 * turn.completed {usage}, turn.failed {error}. Top-level `error` lines are also sent for retries
 * ("Reconnecting..."): not an end. Codex counts cached tokens inside input_tokens and reasoning
 * inside output_tokens (OpenAI's convention), so nothing is added in. No cost.
 */
export const parseCodexEvent: HeadlessParser = (e, turn) => {
  if (e.type === 'thread.started') {
    turn.noteSession(e.thread_id);
  } else if (e.type === 'item.completed') {
    const item = obj(e.item);
    if (item.type === 'agent_message') turn.appendText(item.text);
  } else if (e.type === 'turn.completed') {
    const u = obj(e.usage);
    turn.addUsage(count(u.input_tokens), count(u.output_tokens));
    turn.finish({ ok: true });
  } else if (e.type === 'turn.failed') {
    const detail = detailOf(obj(e.error).message);
    turn.finish({ ok: false, problem: 'reported a failed turn', ...(detail ? { detail } : {}) });
  } else if (e.type !== 'turn.started' && e.type !== 'item.started' && e.type !== 'item.updated') return;
  turn.events += 1;
};

/**
 * Gemini CLI `-o stream-json`: init {session_id}, message {role, content, delta}, tool_use,
 * tool_result, error, result {status, stats {input_tokens (cached included), output_tokens}}.
 */
export const parseGeminiEvent: HeadlessParser = (e, turn) => {
  if (e.type === 'init') {
    turn.noteSession(e.session_id);
  } else if (e.type === 'message') {
    if (e.role === 'assistant') turn.appendText(e.content);
  } else if (e.type === 'result') {
    const stats = obj(e.stats);
    turn.addUsage(count(stats.input_tokens), count(stats.output_tokens));
    if (e.status === 'success') turn.finish({ ok: true });
    else {
      const error = obj(e.error);
      const detail = detailOf(error.message) ?? detailOf(e.status);
      turn.finish({ ok: false, problem: 'reported an error', ...(detail ? { detail } : {}) });
    }
  } else if (e.type !== 'tool_use' && e.type !== 'tool_result' && e.type !== 'error') return;
  turn.events += 1;
};

/**
 * Qwen Code `--output-format stream-json`: Claude's line shapes (system init, assistant, result
 * with is_error, usage and session_id), but usage follows the OpenAI convention: input_tokens
 * already includes cached tokens, so they are not added again.
 */
export const parseQwenEvent: HeadlessParser = (e, turn) => {
  if (e.type !== 'result') {
    parseClaudeEvent(e, turn);
    return;
  }
  turn.noteSession(e.session_id);
  const u = obj(e.usage);
  turn.addUsage(count(u.input_tokens), count(u.output_tokens), e.total_cost_usd);
  if (e.is_error === false) turn.finish({ ok: true });
  else {
    const detail = detailOf(e.result) ?? detailOf(e.subtype);
    turn.finish({ ok: false, problem: 'reported an error', ...(detail ? { detail } : {}) });
  }
  turn.events += 1;
};

/** Decodes one stdout line; anything that is not a JSON object is ignored. */
export function feedLine(parser: HeadlessParser, line: string, turn: HeadlessTurn): void {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return;
  let event: unknown;
  try {
    event = JSON.parse(trimmed);
  } catch {
    return;
  }
  if (isObject(event)) parser(event, turn);
}
