/**
 * The scripted model's OpenAI Responses wire (codex) and Anthropic Messages wire (Claude Code):
 * the shared rule with each vendor's tools, codex's freeform apply_patch, Claude's Read before Edit,
 * the SSE event sequences, and the HTTP routes (a stall on every wire, a refused WebSocket).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ANTHROPIC_USAGE,
  type AnthropicRequest,
  anthropicSse,
  decideAnthropic,
  scriptedToolUseIds,
} from '../fixtures/model-server/anthropic-wire.js';
import { FINAL_TEXT, patchFor } from '../fixtures/model-server/file-request.js';
import { type ModelServer, STALL_PHRASE, startModelServer } from '../fixtures/model-server/model-server.js';
import {
  decideResponses,
  RESPONSES_USAGE,
  type ResponsesInputItem,
  type ResponsesRequest,
  responsesSse,
} from '../fixtures/model-server/responses-wire.js';

/** The `type`s and parsed `data` of an SSE body with named events. */
function events(sse: string): { event: string; data: Record<string, unknown> }[] {
  return sse
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const event = /^event: (.+)$/m.exec(block)?.[1] ?? '';
      const data = JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? '{}') as Record<string, unknown>;
      return { event, data };
    });
}

// codex-acp 0.16's tools for a known model (trimmed): a shell with JSON arguments, apply_patch freeform.
const codexTools: ResponsesRequest['tools'] = [
  { type: 'function', name: 'exec_command', parameters: { properties: { cmd: {}, workdir: {} } } },
  {
    type: 'custom',
    name: 'apply_patch',
    format: {
      type: 'grammar',
      definition: 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF',
    },
  },
  { type: 'web_search' },
];
const codexInput = (prompt: string): ResponsesInputItem[] => [
  {
    type: 'message',
    role: 'developer',
    content: [{ type: 'input_text', text: '<permissions instructions>' }],
  },
  {
    type: 'message',
    role: 'user',
    content: [{ type: 'input_text', text: '<environment_context>\n  <cwd>/repo/wt</cwd>' }],
  },
  { type: 'message', role: 'user', content: [{ type: 'input_text', text: prompt }] },
];

describe("the scripted model's Responses wire (codex)", () => {
  it('creates, edits and deletes through apply_patch, as patches codex can apply', () => {
    const patch = (prompt: string) => {
      const answer = decideResponses({ input: codexInput(prompt), tools: codexTools });
      return 'toolCall' in answer ? answer.toolCall : undefined;
    };
    expect(patch('create hi.txt with content a\\nb')).toEqual({
      name: 'apply_patch',
      arguments: {},
      input: '*** Begin Patch\n*** Add File: hi.txt\n+a\n+b\n*** End Patch\n',
    });
    expect(patch('edit README.md: replace # a with # b')?.input).toBe(
      '*** Begin Patch\n*** Update File: README.md\n@@\n-# a\n+# b\n*** End Patch\n',
    );
    expect(patch('delete old.txt')?.input).toBe('*** Begin Patch\n*** Delete File: old.txt\n*** End Patch\n');
  });

  it('uses the shell to delete when no patch tool is offered, and answers text after a tool result', () => {
    const shellOnly = codexTools?.slice(0, 1);
    expect(decideResponses({ input: codexInput('delete old.txt'), tools: shellOnly })).toEqual({
      toolCall: { name: 'exec_command', arguments: { cmd: "rm -f '/repo/wt/old.txt'" } },
    });
    const input = [
      ...(codexInput('delete old.txt') ?? []),
      { type: 'custom_tool_call_output', content: 'ok' },
    ];
    expect(decideResponses({ input, tools: codexTools })).toEqual({ text: FINAL_TEXT });
    // A function-style apply_patch (older codex) takes the same patch in `input`.
    const functionPatch = [
      { type: 'function', name: 'apply_patch', parameters: { properties: { input: {} } } },
    ];
    expect(decideResponses({ input: codexInput('delete x'), tools: functionPatch })).toEqual({
      toolCall: { name: 'apply_patch', arguments: { input: patchFor({ kind: 'delete', path: 'x' }) } },
    });
  });

  it('streams created, item added, the tool input, item done and completed with usage', () => {
    const answer = decideResponses({ input: codexInput('delete old.txt'), tools: codexTools });
    const sse = events(responsesSse('m', answer));
    expect(sse.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.custom_tool_call_input.delta',
      'response.custom_tool_call_input.done',
      'response.output_item.done',
      'response.completed',
    ]);
    for (const e of sse) expect(e.data.type).toBe(e.event);
    expect(sse[5]?.data.item).toMatchObject({
      type: 'custom_tool_call',
      name: 'apply_patch',
      call_id: 'call_scripted_1',
    });
    expect(sse[6]?.data.response).toMatchObject({ status: 'completed', usage: RESPONSES_USAGE });
    const text = events(responsesSse('m', { text: 'hi' })).map((e) => e.event);
    expect(text).toContain('response.output_text.delta');
    const fn = events(responsesSse('m', { toolCall: { name: 'exec_command', arguments: { cmd: 'ls' } } }));
    expect(fn[3]).toMatchObject({ data: { delta: '{"cmd":"ls"}' } });
  });
});

// Claude Code's tools (trimmed to property names).
const claudeTools: AnthropicRequest['tools'] = [
  { name: 'Bash', input_schema: { properties: { command: {}, description: {} } } },
  {
    name: 'Edit',
    input_schema: { properties: { file_path: {}, old_string: {}, new_string: {}, replace_all: {} } },
  },
  { name: 'Read', input_schema: { properties: { file_path: {}, offset: {}, limit: {} } } },
  { name: 'Write', input_schema: { properties: { file_path: {}, content: {} } } },
];
const claudeBody = (prompt: string, ...history: AnthropicRequest['messages'] & object): AnthropicRequest => ({
  system: [{ type: 'text', text: 'You are Claude Code.\nWorking directory: /repo/wt\n' }],
  messages: [{ role: 'user', content: [{ type: 'text', text: prompt }] }, ...history],
  tools: claudeTools,
});
const result = (id: string) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id }] });

describe("the scripted model's Anthropic wire (Claude Code)", () => {
  it('writes with Write and deletes with Bash, absolute paths', () => {
    const prompt = 'create a.txt with content x';
    expect(decideAnthropic(claudeBody(prompt))).toEqual({
      toolCall: {
        name: 'Write',
        arguments: { file_path: '/repo/wt/a.txt', content: 'x' },
        id: scriptedToolUseIds(prompt).call,
      },
    });
    expect(decideAnthropic(claudeBody('delete a.txt'))).toMatchObject({ toolCall: { name: 'Bash' } });
  });

  it('reads the file before an edit, then edits, then answers text', () => {
    const prompt = 'edit README.md: replace # a with # b';
    const ids = scriptedToolUseIds(prompt);
    expect(decideAnthropic(claudeBody(prompt))).toEqual({
      toolCall: { name: 'Read', arguments: { file_path: '/repo/wt/README.md' }, id: ids.read },
    });
    const afterRead = decideAnthropic(claudeBody(prompt, { role: 'assistant' }, result(ids.read)));
    expect(afterRead).toMatchObject({
      toolCall: { name: 'Edit', arguments: { old_string: '# a', new_string: '# b' } },
    });
    const afterEdit = claudeBody(prompt, { role: 'assistant' }, result(ids.read), result(ids.call));
    expect(decideAnthropic(afterEdit)).toEqual({ text: FINAL_TEXT });
  });

  it("counts only this request's results, however Claude Code merged the warm session's history", () => {
    const first = 'create a.txt with content x';
    const second = 'edit README.md: replace # a with # b';
    const earlier = scriptedToolUseIds(first);
    // As claude-agent-acp sends a follow-up: the previous turn's result and the new prompt merged
    // into one user message, the result first.
    const merged: AnthropicRequest = {
      ...claudeBody(first),
      messages: [
        { role: 'user', content: [{ type: 'text', text: first }] },
        { role: 'assistant' },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: earlier.call },
            { type: 'text', text: second },
          ],
        },
      ],
    };
    expect(decideAnthropic(merged)).toMatchObject({
      toolCall: { name: 'Read', id: scriptedToolUseIds(second).read },
    });
  });

  it('streams message_start, one content block, message_delta with usage and message_stop', () => {
    const sse = events(
      anthropicSse('m', { toolCall: { name: 'Write', arguments: { file_path: '/a', content: 'x' } } }),
    );
    expect(sse.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(sse[1]?.data.content_block).toMatchObject({ type: 'tool_use', name: 'Write', input: {} });
    expect(sse[2]?.data.delta).toEqual({
      type: 'input_json_delta',
      partial_json: '{"file_path":"/a","content":"x"}',
    });
    expect(sse[4]?.data).toMatchObject({
      delta: { stop_reason: 'tool_use' },
      usage: { output_tokens: ANTHROPIC_USAGE.output_tokens },
    });
  });
});

describe('the scripted model server, Responses and Anthropic routes', () => {
  let server: ModelServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  it('answers both wires, refuses the WebSocket upgrade with 426, and stalls on request', async () => {
    server = await startModelServer();
    const post = (path: string, body: unknown) =>
      fetch(`${server?.anthropicBaseUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const responses = await post('/v1/responses', { input: codexInput('delete x'), tools: codexTools });
    expect(((await responses.json()) as { output: { type: string }[] }).output[0]?.type).toBe(
      'custom_tool_call',
    );
    const messages = await post('/v1/messages', claudeBody('delete x'));
    expect(((await messages.json()) as { stop_reason: string }).stop_reason).toBe('tool_use');
    expect((await fetch(`${server.baseUrl}/responses`)).status).toBe(426);
    expect((await fetch(server.anthropicBaseUrl, { method: 'HEAD' })).status).toBe(200);

    const stalledResponse = await post('/v1/messages', {
      ...claudeBody(`delete x ${STALL_PHRASE}`),
      stream: true,
    });
    expect(stalledResponse.status).toBe(200);
    await stalledResponse.body?.cancel();
    expect(server.requests.map((r) => [r.wire, r.stalled ?? false])).toEqual([
      ['responses', false],
      ['anthropic', false],
      ['anthropic', true],
    ]);
    expect(server.unhandled).toEqual([]);
  });
});
