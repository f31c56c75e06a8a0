/**
 * The headless JSON-line parsers, fed with lines the real CLIs printed (test/fixtures/headless/),
 * plus hostile and malformed lines: nothing a line holds may throw or inflate the accounting.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  feedLine,
  type HeadlessParser,
  HeadlessTurn,
  parseClaudeEvent,
  parseCodexEvent,
  parseGeminiEvent,
  parseOpencodeEvent,
  parseQwenEvent,
} from '../../src/agents/headless/parsers.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/headless/${name}`, import.meta.url), 'utf8').split('\n');

function replay(parser: HeadlessParser, lines: readonly string[], turn = new HeadlessTurn()): HeadlessTurn {
  for (const line of lines) feedLine(parser, line, turn);
  return turn;
}

describe('recorded runs', () => {
  it('opencode: session id, text, tokens with cache and reasoning, cost summed over steps', () => {
    const turn = replay(parseOpencodeEvent, fixture('opencode-write.jsonl'));
    expect(turn.sessionId).toMatch(/^ses_/);
    expect(turn.outputText).toBe('Done: the requested change is made.');
    expect([turn.inputTokens, turn.outputTokens]).toEqual([240, 60]);
    expect(turn.cost).toBeCloseTo(0.36);
    // No end-of-turn line: a clean exit ends opencode's turn.
    expect(turn.end).toBeUndefined();
    expect(turn.events).toBe(6);
  });

  it('opencode: an error line ends the turn as failed, with the agent text kept apart', () => {
    const turn = replay(parseOpencodeEvent, fixture('opencode-error.jsonl'));
    expect(turn.end).toEqual({
      ok: false,
      problem: 'reported an error',
      detail: 'Unexpected server error. Check server logs for details.',
    });
  });

  it('claude: session from init, text blocks, result usage with cache tokens and total cost', () => {
    const turn = replay(parseClaudeEvent, fixture('claude-write.jsonl'));
    expect(turn.sessionId).toBe('5564e2b3-6890-4787-a011-cb98270b1c9b');
    expect(turn.outputText).toBe('Done: the requested change is made.');
    expect([turn.inputTokens, turn.outputTokens, turn.cost]).toEqual([240, 60, 0.0027]);
    expect(turn.end).toEqual({ ok: true });
  });

  it('claude: an API error is a failure even though its subtype says success', () => {
    const turn = replay(parseClaudeEvent, fixture('claude-api-error.jsonl'));
    expect(turn.end).toMatchObject({ ok: false, detail: expect.stringContaining('Unable to connect') });
    expect(turn.sessionId).toBe('e0dadab7-baab-405c-8178-184b0396f81c');
  });

  it('codex: thread id, agent message, turn.completed usage', () => {
    const turn = replay(parseCodexEvent, fixture('codex-write.jsonl'));
    expect(turn.sessionId).toBe('01a2182f-2d42-7eb2-8479-d5af7dc6e0b5');
    expect(turn.outputText).toBe('Done: the requested change is made.');
    expect([turn.inputTokens, turn.outputTokens, turn.cost]).toEqual([120, 30, undefined]);
    expect(turn.end).toEqual({ ok: true });
  });

  it('codex: a resumed run reports the thread totals (the turn layer subtracts them)', () => {
    const turn = replay(parseCodexEvent, fixture('codex-resumed.jsonl'));
    expect(turn.sessionId).toBe('01a2182f-2d42-7eb2-8479-d5af7dc6e0b5');
    expect([turn.inputTokens, turn.outputTokens]).toEqual([240, 60]);
  });

  it('codex: "Reconnecting..." error lines are not an end of turn', () => {
    const turn = replay(parseCodexEvent, fixture('codex-retrying.jsonl'));
    expect(turn.end).toBeUndefined();
    expect(turn.sessionId).toBe('01a21828-e125-7940-b736-4a8b23e5a016');
    expect(turn.outputText).toBe('');
  });

  it('gemini: init session, assistant messages only, result stats', () => {
    const turn = replay(parseGeminiEvent, fixture('gemini-write.jsonl'));
    expect(turn.sessionId).toBe('4f7954dd-1457-4e20-862f-9d52f519a3c3');
    // The user message echoed back is not the agent's output.
    expect(turn.outputText).toBe('Done: the requested change is made.');
    expect([turn.inputTokens, turn.outputTokens]).toEqual([360, 90]);
    expect(turn.end).toEqual({ ok: true });
  });

  it('qwen (documented format): result usage without re-adding cache reads', () => {
    const turn = replay(parseQwenEvent, fixture('qwen-write.from-docs.jsonl'));
    expect(turn.sessionId).toBe('9a6b3c1d-2e4f-4a5b-8c7d-0e1f2a3b4c5d');
    expect(turn.outputText).toBe('Done: the requested change is made.');
    expect([turn.inputTokens, turn.outputTokens]).toEqual([270, 40]);
    expect(turn.end).toEqual({ ok: true });
  });
});

describe('hostile and malformed lines', () => {
  const parsers = { parseOpencodeEvent, parseClaudeEvent, parseCodexEvent, parseGeminiEvent, parseQwenEvent };
  const junk = [
    '',
    'not json',
    '{"type":',
    '[1,2,3]',
    'null',
    '"a string"',
    '{"type":"result","usage":"lots","stats":[1],"is_error":"no"}',
    '{"type":"step_finish","part":{"tokens":{"input":-5,"output":1e309,"cache":{"read":"9"}},"cost":-1}}',
    '{"type":"turn.completed","usage":{"input_tokens":NaN}}',
    '{"type":"assistant","message":{"content":[null,{"type":"text","text":42}]}}',
    '{"type":"message","role":"assistant","content":{"x":1}}',
    '{"type":"thread.started","thread_id":{"$ne":1}}',
    '{"__proto__":{"polluted":true},"type":"init","session_id":7}',
  ];

  it.each(Object.entries(parsers))(
    '%s ignores them without throwing or counting garbage',
    (_name, parser) => {
      const turn = replay(parser, junk);
      expect(turn.inputTokens).toBe(0);
      expect(turn.outputTokens).toBe(0);
      expect(turn.cost === undefined || turn.cost === 0).toBe(true);
      expect(turn.sessionId).toBeUndefined();
      expect(turn.outputText).toBe('');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );

  it('caps the kept text and says so', () => {
    const turn = new HeadlessTurn(10);
    feedLine(
      parseGeminiEvent,
      JSON.stringify({ type: 'message', role: 'assistant', content: 'x'.repeat(50) }),
      turn,
    );
    expect(turn.outputText).toBe('x'.repeat(10));
    expect(turn.outputTruncated).toBe(true);
  });

  it('keeps the first end: a success line cannot override an earlier failure', () => {
    const turn = replay(parseCodexEvent, [
      '{"type":"turn.failed","error":{"message":"boom"}}',
      '{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}',
    ]);
    expect(turn.end).toEqual({ ok: false, problem: 'reported a failed turn', detail: 'boom' });
  });
});
