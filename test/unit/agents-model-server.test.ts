import { describe, expect, it } from 'vitest';
import { parseFileRequest, planToolCall } from '../fixtures/model-server/file-request.js';
import { decide, FINAL_TEXT } from '../fixtures/model-server/model-server.js';

const opencodeTools = [
  { name: 'write', properties: ['content', 'filePath'] },
  { name: 'edit', properties: ['filePath', 'oldString', 'newString', 'replaceAll'] },
  { name: 'bash', properties: ['command', 'timeout', 'description'] },
];

describe('the scripted model', () => {
  it('parses create, edit and delete requests', () => {
    expect(parseFileRequest('Please create a/b.txt with content x\\ny')).toEqual({
      kind: 'create',
      path: 'a/b.txt',
      content: 'x\ny',
    });
    expect(parseFileRequest('edit README.md: replace # demo with # new')).toEqual({
      kind: 'edit',
      path: 'README.md',
      oldText: '# demo',
      newText: '# new',
    });
    expect(parseFileRequest('delete old.txt')).toEqual({ kind: 'delete', path: 'old.txt' });
    expect(parseFileRequest('hello')).toBeUndefined();
  });

  it('picks tools by their schema, with absolute paths and a quoted shell path', () => {
    expect(planToolCall({ kind: 'create', path: 'h.txt', content: 'c' }, opencodeTools, '/w')).toEqual({
      name: 'write',
      arguments: { filePath: '/w/h.txt', content: 'c' },
    });
    expect(
      planToolCall({ kind: 'edit', path: 'r', oldText: 'a', newText: 'b' }, opencodeTools, '/w'),
    ).toEqual({
      name: 'edit',
      arguments: { filePath: '/w/r', oldString: 'a', newString: 'b' },
    });
    expect(planToolCall({ kind: 'delete', path: "it's" }, opencodeTools, '/w')).toEqual({
      name: 'bash',
      arguments: { command: "rm -f '/w/it'\\''s'", description: "Delete it's" },
    });
    expect(
      planToolCall(
        { kind: 'create', path: 'h', content: 'c' },
        [{ name: 'read', properties: ['filePath'] }],
        '/w',
      ),
    ).toBeUndefined();
  });

  it('calls one tool, then answers with text once a tool result is in the history', () => {
    const tools = opencodeTools.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        parameters: { properties: Object.fromEntries(t.properties.map((p) => [p, {}])) },
      },
    }));
    const messages = [
      { role: 'system', content: 'Working directory: /repo/wt\n' },
      { role: 'user', content: [{ type: 'text', text: 'create x.txt with content 1' }] },
    ];
    expect(decide({ messages, tools })).toEqual({
      toolCall: { name: 'write', arguments: { filePath: '/repo/wt/x.txt', content: '1' } },
    });
    expect(
      decide({
        messages: [...messages, { role: 'assistant', tool_calls: [{}] }, { role: 'tool', content: 'ok' }],
        tools,
      }),
    ).toEqual({
      text: FINAL_TEXT,
    });
    expect(decide({ messages })).toEqual({ text: FINAL_TEXT });
  });
});
