/** The Anthropic Messages wire, through the official SDK's streaming helper. */
import Anthropic from '@anthropic-ai/sdk';
import type { MessageParam, ToolResultBlockParam } from '@anthropic-ai/sdk/resources/messages';
import type { NativeTool } from './tools.js';
import { type ModelWire, modelError, type StepResult } from './wire.js';

const MAX_TOKENS = 8192;

export class AnthropicWire implements ModelWire {
  readonly api = 'anthropic' as const;
  private readonly client: Anthropic;

  constructor(
    o: { baseUrl?: string; apiKey: string },
    private readonly model: string,
  ) {
    // No retries: a failed step fails the task, with the error saying why.
    this.client = new Anthropic({
      apiKey: o.apiKey,
      ...(o.baseUrl ? { baseURL: o.baseUrl } : {}),
      maxRetries: 0,
    });
  }

  addUser(messages: unknown[], text: string): void {
    messages.push({ role: 'user', content: text } satisfies MessageParam);
  }

  async step(messages: unknown[], system: string, tools: readonly NativeTool[], signal: AbortSignal) {
    const result: StepResult = { text: '', calls: [], inputTokens: 0, outputTokens: 0 };
    let final: Anthropic.Message;
    try {
      const stream = this.client.messages.stream(
        {
          model: this.model,
          max_tokens: MAX_TOKENS,
          system,
          messages: messages as MessageParam[],
          tools: tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters })),
        },
        { signal },
      );
      final = await stream.finalMessage();
    } catch (err) {
      if (signal.aborted) throw err;
      throw modelError(err, this.api);
    }
    const u = final.usage;
    result.inputTokens =
      (u?.input_tokens ?? 0) + (u?.cache_read_input_tokens ?? 0) + (u?.cache_creation_input_tokens ?? 0);
    result.outputTokens = u?.output_tokens ?? 0;
    for (const block of final.content ?? []) {
      if (block.type === 'text') result.text += block.text;
      if (block.type === 'tool_use') {
        const input = block.input;
        result.calls.push({
          id: block.id,
          name: block.name,
          args:
            input && typeof input === 'object' && !Array.isArray(input)
              ? (input as Record<string, unknown>)
              : {},
        });
      }
    }
    messages.push({ role: 'assistant', content: final.content } satisfies MessageParam);
    return result;
  }

  addToolResults(messages: unknown[], results: { id: string; text: string }[]): void {
    const content: ToolResultBlockParam[] = results.map((r) => ({
      type: 'tool_result',
      tool_use_id: r.id,
      content: r.text,
    }));
    messages.push({ role: 'user', content } satisfies MessageParam);
  }

  toolResultSlots(messages: unknown[]) {
    return (messages as MessageParam[]).flatMap((m) =>
      m.role === 'user' && Array.isArray(m.content)
        ? m.content.flatMap((b) =>
            b.type === 'tool_result' && typeof b.content === 'string'
              ? [
                  {
                    get: () => b.content as string,
                    set: (t: string) => {
                      b.content = t;
                    },
                  },
                ]
              : [],
          )
        : [],
    );
  }
}
