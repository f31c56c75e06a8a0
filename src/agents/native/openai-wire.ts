/** The OpenAI chat-completions wire (OpenAI and compatible servers: llama.cpp, vLLM, Ollama). */
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { NativeTool } from './tools.js';
import { type ModelWire, modelError, parseArgs, type StepResult } from './wire.js';

type Msg = ChatCompletionMessageParam;

export class OpenAiWire implements ModelWire {
  readonly api = 'openai' as const;
  private readonly client: OpenAI;

  constructor(
    o: { baseUrl?: string; apiKey: string },
    private readonly model: string,
  ) {
    // No retries: a failed step fails the task, with the error saying why.
    this.client = new OpenAI({
      apiKey: o.apiKey,
      ...(o.baseUrl ? { baseURL: o.baseUrl } : {}),
      maxRetries: 0,
    });
  }

  addUser(messages: unknown[], text: string): void {
    messages.push({ role: 'user', content: text } satisfies Msg);
  }

  async step(messages: unknown[], system: string, tools: readonly NativeTool[], signal: AbortSignal) {
    const result: StepResult = { text: '', calls: [], inputTokens: 0, outputTokens: 0 };
    const parts: { id: string; name: string; args: string }[] = [];
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: [{ role: 'system', content: system }, ...(messages as Msg[])],
          tools: tools.map((t) => ({
            type: 'function' as const,
            function: { name: t.name, description: t.description, parameters: t.parameters },
          })),
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal },
      );
      for await (const chunk of stream) {
        if (chunk.usage) {
          result.inputTokens += chunk.usage.prompt_tokens ?? 0;
          result.outputTokens += chunk.usage.completion_tokens ?? 0;
        }
        const delta = chunk.choices?.[0]?.delta;
        if (delta?.content) result.text += delta.content;
        for (const call of delta?.tool_calls ?? []) {
          parts[call.index] ??= { id: '', name: '', args: '' };
          const part = parts[call.index] as { id: string; name: string; args: string };
          if (call.id) part.id = call.id;
          if (call.function?.name) part.name += call.function.name;
          if (call.function?.arguments) part.args += call.function.arguments;
        }
      }
    } catch (err) {
      if (signal.aborted) throw err;
      throw modelError(err, this.api);
    }
    result.calls = parts.filter(Boolean).map((p, i) => ({
      id: p.id || `call_${messages.length}_${i}`,
      name: p.name,
      args: parseArgs(p.args),
    }));
    messages.push({
      role: 'assistant',
      content: result.text || null,
      ...(result.calls.length
        ? {
            tool_calls: result.calls.map((c, i) => ({
              id: c.id,
              type: 'function' as const,
              function: { name: c.name, arguments: parts.filter(Boolean)[i]?.args ?? '{}' },
            })),
          }
        : {}),
    } satisfies Msg);
    return result;
  }

  addToolResults(messages: unknown[], results: { id: string; text: string }[]): void {
    for (const r of results)
      messages.push({ role: 'tool', tool_call_id: r.id, content: r.text } satisfies Msg);
  }

  toolResultSlots(messages: unknown[]) {
    return (messages as Msg[]).flatMap((m) =>
      m.role === 'tool' && typeof m.content === 'string'
        ? [
            {
              get: () => m.content as string,
              set: (t: string) => {
                m.content = t;
              },
            },
          ]
        : [],
    );
  }
}
