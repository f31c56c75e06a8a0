/**
 * Every backend's activity as the one transcript event shape: ACP session/update, the headless
 * CLIs' JSON lines, and the "now doing" line drawn from them. Agent input is hostile: oversized
 * and mistyped fields are capped or dropped.
 */
import type { SessionUpdate } from '@agentclientprotocol/sdk/unstable';
import { describe, expect, it } from 'vitest';
import { acpEventOf } from '../../src/agents/acp/events.js';
import type { AgentEvent } from '../../src/agents/agent-events.js';
import {
  feedLine,
  HeadlessTurn,
  parseClaudeEvent,
  parseCodexEvent,
  parseGeminiEvent,
  parseOpencodeEvent,
} from '../../src/agents/headless/parsers.js';
import { servePartEvent } from '../../src/agents/opencode-serve/parts.js';
import { nowDoingOf } from '../../src/transcripts/now-doing.js';

function eventsOf(parser: typeof parseOpencodeEvent, lines: unknown[]): AgentEvent[] {
  const events: AgentEvent[] = [];
  const turn = new HeadlessTurn(undefined, (e) => events.push(e));
  for (const line of lines) feedLine(parser, JSON.stringify(line), turn);
  return events;
}

describe('ACP session/update as events', () => {
  it('maps text, tool calls with their command and exit, plans and usage; ignores the rest', () => {
    const updates = [
      { sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: 'hi' } },
      { sessionUpdate: 'agent_thought_chunk', content: { type: 'text', text: 'hmm' } },
      {
        sessionUpdate: 'tool_call',
        toolCallId: 'c1',
        title: 'npm test',
        kind: 'execute',
        status: 'pending',
        rawInput: { command: 'npm test' },
      },
      {
        sessionUpdate: 'tool_call_update',
        toolCallId: 'c1',
        status: 'failed',
        rawOutput: { metadata: { exit: 1 } },
      },
      { sessionUpdate: 'plan', entries: [{ content: 'write tests', priority: 'high', status: 'pending' }] },
      { sessionUpdate: 'usage_update', used: 10, size: 100, cost: { amount: 0.5, currency: 'EUR' } },
      { sessionUpdate: 'available_commands_update', availableCommands: [] },
    ] as SessionUpdate[];
    expect(updates.map(acpEventOf)).toEqual([
      { kind: 'message', text: 'hi' },
      { kind: 'thought', text: 'hmm' },
      {
        kind: 'tool',
        id: 'c1',
        toolKind: 'execute',
        title: 'npm test',
        command: 'npm test',
        status: 'pending',
      },
      { kind: 'tool', id: 'c1', status: 'failed', exitCode: 1 },
      { kind: 'plan', entries: [{ content: 'write tests', status: 'pending' }] },
      { kind: 'usage', cost: 0.5, currency: 'EUR' },
      undefined,
    ]);
  });

  it('caps a hostile title and drops a tool call without an id', () => {
    const huge = acpEventOf({
      sessionUpdate: 'tool_call',
      toolCallId: 'x',
      title: 'a'.repeat(1e6),
    } as SessionUpdate);
    expect((huge as { title: string }).title).toHaveLength(2000);
    expect(
      acpEventOf({ sessionUpdate: 'tool_call', toolCallId: 42, title: 't' } as unknown as SessionUpdate),
    ).toBe(undefined);
  });
});

describe('headless JSON lines as events', () => {
  it('opencode: tool_use with its input, text and step usage', () => {
    const part = {
      tool: 'bash',
      callID: 'k',
      state: { status: 'completed', input: { command: 'ls' }, metadata: { exit: 0 } },
    };
    expect(
      eventsOf(parseOpencodeEvent, [
        { type: 'tool_use', part },
        { type: 'text', part: { text: 'ok' } },
        { type: 'step_finish', part: { tokens: { input: 5, output: 2 }, cost: 0.1 } },
      ]),
    ).toEqual([
      { kind: 'tool', id: 'k', toolKind: 'bash', command: 'ls', status: 'completed', exitCode: 0 },
      { kind: 'message', text: 'ok' },
      { kind: 'usage', inputTokens: 5, outputTokens: 2, cost: 0.1, currency: 'USD' },
    ]);
  });

  it('claude: tool_use blocks, then their results', () => {
    const use = { type: 'tool_use', id: 't1', name: 'Edit', input: { file_path: 'a.ts' } };
    const result = { type: 'tool_result', tool_use_id: 't1', is_error: true };
    expect(
      eventsOf(parseClaudeEvent, [
        { type: 'assistant', message: { content: [use] } },
        { type: 'user', message: { content: [result] } },
      ]),
    ).toEqual([
      { kind: 'tool', id: 't1', toolKind: 'Edit', paths: ['a.ts'], status: 'in_progress' },
      { kind: 'tool', id: 't1', status: 'failed' },
    ]);
  });

  it('codex: command executions and file changes; gemini: tool_use and tool_result', () => {
    const cmd = {
      id: 'i1',
      type: 'command_execution',
      command: 'npm test',
      status: 'completed',
      exit_code: 2,
    };
    const files = {
      id: 'i2',
      type: 'file_change',
      changes: [{ path: 'x.ts', kind: 'update' }],
      status: 'completed',
    };
    expect(
      eventsOf(parseCodexEvent, [
        { type: 'item.completed', item: cmd },
        { type: 'item.completed', item: files },
      ]),
    ).toEqual([
      { kind: 'tool', id: 'i1', toolKind: 'execute', command: 'npm test', status: 'completed', exitCode: 2 },
      { kind: 'tool', id: 'i2', toolKind: 'edit', paths: ['x.ts'], status: 'completed' },
    ]);
    expect(
      eventsOf(parseGeminiEvent, [
        { type: 'tool_use', tool_name: 'write_file', tool_id: 'g', parameters: { file_path: 'b.ts' } },
        { type: 'tool_result', tool_id: 'g', status: 'success' },
      ]),
    ).toEqual([
      { kind: 'tool', id: 'g', toolKind: 'write_file', paths: ['b.ts'], status: 'in_progress' },
      { kind: 'tool', id: 'g', status: 'completed' },
    ]);
  });
});

describe('opencode serve parts as events', () => {
  it('reports a tool part by its status, a text part only once complete, a step by its usage', () => {
    const tool = {
      type: 'tool',
      tool: 'write',
      callID: 'c',
      state: { status: 'running', input: { filePath: 'a.txt' } },
    };
    expect(servePartEvent('p1', tool, 100)).toEqual({
      key: 'running',
      event: { kind: 'tool', id: 'c', toolKind: 'write', paths: ['a.txt'], status: 'in_progress' },
    });
    expect(servePartEvent('p2', { type: 'text', text: 'par', time: { start: 1 } }, 100)).toBeUndefined();
    expect(servePartEvent('p2', { type: 'text', text: 'partial', time: { start: 1, end: 2 } }, 4)).toEqual({
      key: 'done',
      event: { kind: 'message', text: 'part' },
    });
    const step = {
      type: 'step-finish',
      tokens: { input: 10, output: 3, reasoning: 1, cache: { read: 5 } },
      cost: 0.2,
    };
    expect(servePartEvent('p3', step, 100)?.event).toEqual({
      kind: 'usage',
      inputTokens: 15,
      outputTokens: 4,
      cost: 0.2,
      currency: 'USD',
    });
  });
});

describe('now doing', () => {
  it('names the running command or the file being edited, and nothing for a finished call', () => {
    expect(
      nowDoingOf({ kind: 'tool', id: '1', toolKind: 'execute', command: 'npm test', status: 'in_progress' }),
    ).toBe('running npm test');
    expect(nowDoingOf({ kind: 'tool', id: '2', toolKind: 'write', paths: ['src/a.ts'] })).toBe(
      'editing src/a.ts',
    );
    expect(nowDoingOf({ kind: 'tool', id: '3', toolKind: 'edit', status: 'completed' })).toBeUndefined();
    expect(nowDoingOf({ kind: 'thought', text: 'x' })).toBe('thinking');
    expect(nowDoingOf({ kind: 'usage', inputTokens: 1 })).toBeUndefined();
  });
});
