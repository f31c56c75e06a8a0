/**
 * What one ACP prompt turn produced, gathered from `session/update` notifications and the final
 * PromptResponse. Pure: no I/O, so the accounting rules are unit-testable.
 */
import type { Cost, PromptResponse, SessionUpdate, Usage } from '@agentclientprotocol/sdk/unstable';
import { DEFAULT_MAX_OUTPUT_CHARS, type TurnUsage } from '../agent-backend.js';

/** Agents are not trusted to send sane numbers: NaN, negatives and fractions become counts. */
function count(value: number | null | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

/**
 * Maps ACP usage to what boocoder stores. ACP reports cache and reasoning tokens beside
 * input/output (opencode and claude-agent-acp both count them separately), so they are added in.
 */
export function toRunUsage(usage: Usage | null | undefined, cost: Cost | undefined): TurnUsage | undefined {
  if (!usage && !cost) return undefined;
  const result: TurnUsage = {
    inputTokens: count(usage?.inputTokens) + count(usage?.cachedReadTokens) + count(usage?.cachedWriteTokens),
    outputTokens: count(usage?.outputTokens) + count(usage?.thoughtTokens),
  };
  if (cost && typeof cost.amount === 'number' && Number.isFinite(cost.amount) && cost.amount >= 0) {
    result.cost = cost.amount;
    result.currency = String(cost.currency).slice(0, 16);
  }
  return result;
}

/**
 * Gemini CLI leaves PromptResponse.usage empty and reports the turn's tokens (summed over the
 * turn's model calls) in `_meta.quota.token_count {input_tokens, output_tokens}`, from the
 * API's promptTokenCount (cached tokens included) and candidatesTokenCount. Read defensively:
 * `_meta` is free-form and comes from the agent.
 */
export function quotaUsageOf(meta: unknown): Usage | undefined {
  const quota = isObject(meta) ? meta.quota : undefined;
  const tokens = isObject(quota) ? quota.token_count : undefined;
  if (!isObject(tokens)) return undefined;
  const number = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const inputTokens = count(number(tokens.input_tokens));
  const outputTokens = count(number(tokens.output_tokens));
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
}

/**
 * Qwen Code leaves PromptResponse.usage empty too and attaches each model call's usage to an
 * agent_message_chunk as `_meta.usage`, Gemini-API style: inputTokens is the prompt count with
 * cached tokens already in it (so cachedReadTokens is not added again), outputTokens excludes
 * thoughts. A chunk whose `_meta.parentToolCallId` is set belongs to a subagent's transcript,
 * which Qwen itself leaves out of the session's totals; so does boocoder.
 */
export function chunkUsageOf(meta: unknown): Usage | undefined {
  if (!isObject(meta) || meta.parentToolCallId !== undefined || !isObject(meta.usage)) return undefined;
  const u = meta.usage;
  const number = (v: unknown) => (typeof v === 'number' ? count(v) : 0);
  if (typeof u.inputTokens !== 'number' && typeof u.outputTokens !== 'number') return undefined;
  const inputTokens = number(u.inputTokens);
  const outputTokens = number(u.outputTokens) + number(u.thoughtTokens);
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class AcpTurnRecord {
  updates = 0;
  outputTruncated = false;
  private output = '';
  private lastCost: Cost | undefined;
  /** Summed `_meta.usage` of message chunks (Qwen): used when the response carries none. */
  private chunkUsage: Usage | undefined;

  /**
   * @param costBefore the session's cumulative cost when this turn began: agents report a running
   *   total, so a warm session's second turn must not count the first turn's cost again.
   */
  constructor(
    private readonly maxOutputChars = DEFAULT_MAX_OUTPUT_CHARS,
    private readonly costBefore = 0,
  ) {}

  /** The session's cumulative cost as last reported (in this turn or before it). */
  get sessionCost(): number {
    const amount = this.lastCost?.amount;
    return typeof amount === 'number' && Number.isFinite(amount) ? amount : this.costBefore;
  }

  add(update: SessionUpdate): void {
    this.updates += 1;
    if (update.sessionUpdate === 'agent_message_chunk') {
      if (update.content.type === 'text') this.appendOutput(update.content.text);
      this.addChunkUsage(chunkUsageOf(update._meta));
    } else if (update.sessionUpdate === 'usage_update' && update.cost) {
      // The cost in usage_update is cumulative for the session: the last one wins.
      this.lastCost = update.cost;
    }
  }

  get outputText(): string {
    return this.output;
  }

  usage(response: PromptResponse | undefined): TurnUsage | undefined {
    const cost = this.lastCost && {
      ...this.lastCost,
      amount: Math.max(0, this.sessionCost - this.costBefore),
    };
    return toRunUsage(response?.usage ?? quotaUsageOf(response?._meta) ?? this.chunkUsage, cost);
  }

  private addChunkUsage(u: Usage | undefined): void {
    if (!u) return;
    const before = this.chunkUsage;
    const inputTokens = (before?.inputTokens ?? 0) + u.inputTokens;
    const outputTokens = (before?.outputTokens ?? 0) + u.outputTokens;
    this.chunkUsage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
  }

  private appendOutput(text: string): void {
    // Cap what is kept: a chatty (or hostile) agent must not grow this without bound.
    const room = this.maxOutputChars - this.output.length;
    if (room <= 0) {
      if (text.length > 0) this.outputTruncated = true;
      return;
    }
    if (text.length > room) this.outputTruncated = true;
    this.output += text.slice(0, room);
  }
}
