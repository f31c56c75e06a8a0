/**
 * opencode serve's message parts as transcript events (agent-events.ts). Pure. A part is sent
 * again on every change; `key` says what the event reports (a tool's status, a finished text), so
 * the caller reports each part once per key.
 */
import { type AgentEvent, toolEvent, usageEvent } from '../agent-events.js';
import { pathIn, toolStatus } from '../headless/events.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown): number =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : 0;

/**
 * A tool part each time its status changes, a step-finish part's usage, a text or reasoning part
 * once it is complete (`time.end`); undefined for parts of no interest.
 */
export function servePartEvent(
  id: string,
  part: Json,
  maxTextChars: number,
): { key: string; event: AgentEvent | undefined } | undefined {
  if (part.type === 'tool') {
    const state = isObject(part.state) ? part.state : {};
    const input = isObject(state.input) ? state.input : {};
    const metadata = isObject(state.metadata) ? state.metadata : {};
    const event = toolEvent({
      ...{ id: part.callID ?? id, toolKind: part.tool, title: state.title, paths: [pathIn(input)] },
      ...{ command: input.command, status: toolStatus(state.status), exitCode: metadata.exit },
    });
    return { key: String(state.status), event };
  }
  if (part.type === 'step-finish' && isObject(part.tokens)) {
    const cache = isObject(part.tokens.cache) ? part.tokens.cache : {};
    const { input, output, reasoning } = part.tokens;
    const inputTokens = count(input) + count(cache.read) + count(cache.write);
    const outputTokens = count(output) + count(reasoning);
    return { key: 'done', event: usageEvent({ inputTokens, outputTokens, cost: part.cost }) };
  }
  if ((part.type === 'text' || part.type === 'reasoning') && isObject(part.time) && part.time.end) {
    const text = typeof part.text === 'string' && part.synthetic !== true ? part.text : '';
    const kind = part.type === 'text' ? 'message' : 'thought';
    return { key: 'done', event: text ? { kind, text: text.slice(0, maxTextChars) } : undefined };
  }
  return undefined;
}
