/**
 * The scripted model's Gemini API side: the same rule as the OpenAI side, Gemini's tools picked by
 * schema shape, JSON side requests answered from their schema, and unknown routes recorded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FINAL_TEXT } from '../fixtures/model-server/file-request.js';
import {
  decideGemini,
  GEMINI_USAGE,
  type GeminiRequest,
  geminiSse,
  parseGeminiPath,
  valueForSchema,
} from '../fixtures/model-server/gemini-wire.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';

// Gemini CLI 0.61's declarations (trimmed to property names), as it sends them.
const declare = (name: string, ...props: string[]) => ({
  name,
  parametersJsonSchema: { type: 'object', properties: Object.fromEntries(props.map((p) => [p, {}])) },
});
const tools = [
  {
    functionDeclarations: [
      declare('read_file', 'file_path', 'start_line', 'end_line'),
      declare('replace', 'file_path', 'instruction', 'old_string', 'new_string', 'allow_multiple'),
      declare('write_file', 'file_path', 'content'),
      declare('run_shell_command', 'command', 'description', 'dir_path', 'is_background'),
    ],
  },
];
const context = {
  role: 'user',
  parts: [
    { text: '<session_context>\n- **Workspace Directories:**\n  - /repo/wt\n</session_context>' },
    { text: 'Please edit README.md: replace # a with # b' },
  ],
};

describe("the scripted model's Gemini wire format", () => {
  it('calls the tool that fits, with absolute paths and the instruction replace requires', () => {
    expect(decideGemini({ contents: [context], tools })).toEqual({
      toolCall: {
        name: 'replace',
        arguments: {
          file_path: '/repo/wt/README.md',
          old_string: '# a',
          new_string: '# b',
          instruction: 'Replace # a with # b',
        },
      },
    });
    const create = {
      role: 'user',
      parts: [...(context.parts.slice(0, 1) ?? []), { text: 'create x with content 1' }],
    };
    expect(decideGemini({ contents: [create], tools })).toEqual({
      toolCall: { name: 'write_file', arguments: { file_path: '/repo/wt/x', content: '1' } },
    });
    const del = { role: 'user', parts: [...context.parts.slice(0, 1), { text: 'delete old.txt' }] };
    expect(decideGemini({ contents: [del], tools })).toEqual({
      toolCall: {
        name: 'run_shell_command',
        arguments: { command: "rm -f '/repo/wt/old.txt'", description: 'Delete old.txt' },
      },
    });
  });

  it('answers with text once a functionResponse is in the history, or when no tool fits', () => {
    const body: GeminiRequest = {
      contents: [
        context,
        { role: 'model', parts: [{ functionCall: { name: 'replace', args: {} } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'replace', response: { output: 'ok' } } }] },
      ],
      tools,
    };
    expect(decideGemini(body)).toEqual({ text: FINAL_TEXT });
    expect(decideGemini({ contents: [context] })).toEqual({ text: FINAL_TEXT });
  });

  it('answers a JSON side request (the model router) with the smallest value of its schema', () => {
    const responseJsonSchema = {
      type: 'OBJECT',
      properties: {
        complexity_reasoning: { type: 'STRING' },
        complexity_score: { type: 'INTEGER' },
        tags: { type: 'ARRAY', items: { type: 'STRING' } },
      },
      required: ['complexity_reasoning', 'complexity_score'],
    };
    expect(decideGemini({ contents: [context], tools, generationConfig: { responseJsonSchema } })).toEqual({
      json: { complexity_reasoning: 'scripted', complexity_score: 1 },
    });
    expect(valueForSchema({ type: 'string', enum: ['user', 'model'] })).toBe('user');
    expect(valueForSchema({ type: ['boolean', 'null'] })).toBe(false);
  });

  it('streams one SSE event with the answer and usage, and routes model paths', () => {
    const [line] = geminiSse('m', { text: 'hi' }).split('\r\n');
    expect(JSON.parse((line ?? '').replace(/^data: /, ''))).toMatchObject({
      candidates: [{ content: { role: 'model', parts: [{ text: 'hi' }] }, finishReason: 'STOP' }],
      usageMetadata: GEMINI_USAGE,
    });
    expect(parseGeminiPath('/v1beta/models/gemini-2.5-pro:streamGenerateContent')).toEqual({
      model: 'gemini-2.5-pro',
      method: 'streamGenerateContent',
    });
    expect(parseGeminiPath('/v1beta/models/a/b:generateContent')).toBeUndefined();
    expect(parseGeminiPath('/v1/chat/completions')).toBeUndefined();
  });
});

describe('the scripted model server', () => {
  let server: ModelServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  it('serves Gemini requests beside OpenAI ones and records what it has no route for', async () => {
    server = await startModelServer();
    const res = await fetch(`${server.geminiBaseUrl}/v1beta/models/m:generateContent`, {
      method: 'POST',
      body: JSON.stringify({ contents: [context], tools }),
    });
    expect(((await res.json()) as { candidates: unknown[] }).candidates).toHaveLength(1);
    expect(server.requests.map((r) => [r.wire, r.model])).toEqual([['gemini', 'm']]);
    const unknown = await fetch(`${server.geminiBaseUrl}/v1beta/models/m:embedContent`, { method: 'POST' });
    expect(unknown.status).toBe(404);
    expect(server.unhandled).toEqual(['POST /v1beta/models/m:embedContent']);
  });
});
