/**
 * What the native agent's loop (loop.ts) needs from a model API, one implementation per wire
 * format: openai-wire.ts (chat completions) and anthropic-wire.ts (Messages). A conversation is
 * kept in the wire's own message format, as the database stores it.
 */
import { BoocoderError } from '../../errors.js';
import type { NativeTool } from './tools.js';

export interface ToolCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
}

export interface StepResult {
  text: string;
  calls: ToolCall[];
  inputTokens: number;
  outputTokens: number;
}

export interface ModelWire {
  readonly api: 'openai' | 'anthropic';
  /** Appends the user's prompt. */
  addUser(messages: unknown[], text: string): void;
  /** Calls the model once (streaming) and appends its answer to `messages`. */
  step(
    messages: unknown[],
    system: string,
    tools: readonly NativeTool[],
    signal: AbortSignal,
  ): Promise<StepResult>;
  /** Appends the results of the answer's tool calls. */
  addToolResults(messages: unknown[], results: { id: string; text: string }[]): void;
  /** The tool results' texts, oldest first, to trim when the context grows too big. */
  toolResultSlots(messages: unknown[]): { get(): string; set(text: string): void }[];
}

/** Parses a tool call's JSON arguments; garbage from the model is its own error to read. */
export function parseArgs(json: string): Record<string, unknown> {
  try {
    const v = JSON.parse(json || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return { __invalid: json.slice(0, 200) };
  }
}

/**
 * The stable error of a failed model call, by what the SDKs' error classes carry: a connection
 * failure, an HTTP status, or a body that is not the wire format. Messages name no endpoint or key.
 */
export function modelError(err: unknown, api: string): BoocoderError {
  const status = (err as { status?: unknown }).status;
  const name = (err as Error)?.constructor?.name ?? '';
  if (/Connection/.test(name)) {
    return new BoocoderError(
      'E_MODEL_UNREACHABLE',
      `boocode could not reach its model endpoint (${api}); check that it runs and agents.boocode.baseUrl`,
    );
  }
  if (status === 401 || status === 403) {
    return new BoocoderError(
      'E_MODEL_AUTH',
      `boocode's model endpoint (${api}) refused the API key (HTTP ${status}); set the key in agents.boocode.env`,
    );
  }
  return new BoocoderError(
    'E_MODEL_BAD_RESPONSE',
    `boocode's model endpoint (${api}) failed${typeof status === 'number' ? ` with HTTP ${status}` : ' or answered something that is not its wire format'}; details hold its message`,
    { message: String((err as Error)?.message ?? err).slice(0, 500) },
  );
}
