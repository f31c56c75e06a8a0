import type { PermissionOption, SessionUpdate } from '@agentclientprotocol/sdk/unstable';
import { describe, expect, it } from 'vitest';
import { AcpTurnRecord, toRunUsage } from '../../src/agents/acp/turn-record.js';
import { HeadBuffer, TailBuffer } from '../../src/agents/capped-output.js';
import { agentSearchDirs } from '../../src/agents/find-executable.js';
import { parseVersion } from '../../src/agents/probe.js';
import { choosePermission } from '../../src/permissions/policy.js';

const option = (optionId: string, kind: PermissionOption['kind']): PermissionOption => ({
  optionId,
  name: optionId,
  kind,
});
const chunk = (text: string): SessionUpdate => ({
  sessionUpdate: 'agent_message_chunk',
  content: { type: 'text', text },
});

describe('choosePermission', () => {
  it('prefers allow_once over an earlier allow_always', () => {
    const answer = choosePermission([
      option('a', 'allow_always'),
      option('r', 'reject_once'),
      option('o', 'allow_once'),
    ]);
    expect(answer).toEqual({ outcome: { outcome: 'selected', optionId: 'o' } });
  });

  it('falls back to the first allow_* option, and cancels when nothing allows', () => {
    expect(choosePermission([option('r', 'reject_once'), option('a', 'allow_always')])).toEqual({
      outcome: { outcome: 'selected', optionId: 'a' },
    });
    expect(choosePermission([option('r', 'reject_once'), option('R', 'reject_always')])).toEqual({
      outcome: { outcome: 'cancelled' },
    });
    expect(choosePermission([])).toEqual({ outcome: { outcome: 'cancelled' } });
  });
});

describe('usage accounting', () => {
  it('adds cache reads/writes to input and reasoning to output', () => {
    const usage = {
      totalTokens: 0,
      inputTokens: 100,
      outputTokens: 20,
      cachedReadTokens: 1000,
      cachedWriteTokens: 50,
      thoughtTokens: 7,
    };
    expect(toRunUsage(usage, undefined)).toEqual({ inputTokens: 1150, outputTokens: 27 });
  });

  it('turns hostile numbers into sane counts and ignores a negative or NaN cost', () => {
    const usage = {
      totalTokens: 0,
      inputTokens: Number.NaN,
      outputTokens: -5,
      cachedReadTokens: 2.6,
      thoughtTokens: null,
    };
    expect(toRunUsage(usage, { amount: Number.NaN, currency: 'USD' })).toEqual({
      inputTokens: 3,
      outputTokens: 0,
    });
    expect(toRunUsage(undefined, { amount: -1, currency: 'USD' })).toEqual({
      inputTokens: 0,
      outputTokens: 0,
    });
  });

  it('is absent when the agent reported nothing, and keeps the last cumulative cost', () => {
    const record = new AcpTurnRecord();
    expect(record.usage(undefined)).toBeUndefined();
    record.add({
      sessionUpdate: 'usage_update',
      used: 10,
      size: 100,
      cost: { amount: 0.1, currency: 'USD' },
    });
    record.add({
      sessionUpdate: 'usage_update',
      used: 20,
      size: 100,
      cost: { amount: 0.3, currency: 'USD' },
    });
    record.add({ sessionUpdate: 'usage_update', used: 30, size: 100 });
    expect(record.usage({ stopReason: 'end_turn' })).toEqual({
      inputTokens: 0,
      outputTokens: 0,
      cost: 0.3,
      currency: 'USD',
    });
    expect(record.updates).toBe(3);
  });

  it("counts only this turn's share of a warm session's cumulative cost, carried over turns without one", () => {
    const usageUpdate = (amount: number) =>
      ({ sessionUpdate: 'usage_update', used: 1, size: 100, cost: { amount, currency: 'USD' } }) as const;
    const first = new AcpTurnRecord();
    first.add(usageUpdate(0.25));
    expect(first.usage({ stopReason: 'end_turn' })?.cost).toBe(0.25);
    const second = new AcpTurnRecord(undefined, first.sessionCost);
    expect(second.usage({ stopReason: 'end_turn' })).toBeUndefined();
    const third = new AcpTurnRecord(undefined, second.sessionCost);
    third.add(usageUpdate(0.4));
    expect(third.usage({ stopReason: 'end_turn' })?.cost).toBeCloseTo(0.15);
  });

  it("sums Qwen's per-call `_meta.usage` on message chunks, skipping subagents', when the response has none", () => {
    // As qwen-code 0.24 sends them: prompt tokens include cached ones; thoughts are separate.
    const chunk = (meta: Record<string, unknown>) =>
      ({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: '' }, _meta: meta }) as const;
    const record = new AcpTurnRecord();
    record.add(
      chunk({ usage: { inputTokens: 120, outputTokens: 30, thoughtTokens: 5, cachedReadTokens: 100 } }),
    );
    record.add(chunk({ usage: { inputTokens: 200, outputTokens: 10 } }));
    record.add(chunk({ usage: { inputTokens: 999, outputTokens: 999 }, parentToolCallId: 'sub-1' }));
    record.add(chunk({ usage: 'nonsense' }));
    record.add(chunk({ usage: { inputTokens: -5, outputTokens: Number.NaN, thoughtTokens: 2 } }));
    expect(record.usage({ stopReason: 'end_turn' })).toEqual({ inputTokens: 320, outputTokens: 47 });
    // A response that carries usage itself wins over the chunks.
    expect(
      record.usage({ stopReason: 'end_turn', usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3 } }),
    ).toEqual({ inputTokens: 1, outputTokens: 2 });
  });
});

describe('AcpTurnRecord output', () => {
  it('joins text chunks only and caps them', () => {
    const record = new AcpTurnRecord(8);
    record.add(chunk('hello '));
    record.add({ sessionUpdate: 'agent_thought_chunk', content: { type: 'text', text: 'secret plan' } });
    record.add({
      sessionUpdate: 'agent_message_chunk',
      content: { type: 'image', data: 'AAAA', mimeType: 'image/png' },
    });
    expect(record.outputTruncated).toBe(false);
    record.add(chunk('world'));
    record.add(chunk('more'));
    expect(record.outputText).toBe('hello wo');
    expect(record.outputTruncated).toBe(true);
    expect(record.updates).toBe(5);
  });
});

describe('parseVersion', () => {
  it.each([
    ['opencode 1.18.3', '1.18.3'],
    ['0.9.0-nightly.20250101 (Gemini CLI)', '0.9.0-nightly.20250101'],
    ['v20.1.0\n', '20.1.0'],
    ['qwen version 0.0.14+build.5', '0.0.14+build.5'],
    ['tool 2.1', '2.1'],
    ['build x86_64 10.3.2', '10.3.2'],
    ['no version', null],
    ['', null],
    ['ipv4 1.2', '1.2'],
  ])('%j → %j', (text, version) => {
    expect(parseVersion(text)).toBe(version);
  });

  it('caps the version length', () => {
    expect(parseVersion(`1.2.3-${'a'.repeat(500)}`)?.length).toBe(64);
  });
});

describe('capped buffers', () => {
  it('HeadBuffer keeps the first bytes and says when to stop reading', () => {
    const head = new HeadBuffer(10);
    expect(head.push(Buffer.from('12345'))).toBe(true);
    expect(head.push(Buffer.from('6789abcdef'))).toBe(false);
    expect(head.push(Buffer.from('more'))).toBe(false);
    expect(head.text()).toBe('123456789a');
    expect(head.overflowed).toBe(true);
  });

  it('TailBuffer keeps the last bytes and the last lines, each cut', () => {
    const tail = new TailBuffer(16);
    tail.push(Buffer.from('first line\nsecond line\n'));
    tail.push(Buffer.from('third\n'));
    expect(tail.lastLines()).toEqual(['cond line', 'third']);
    const long = new TailBuffer(1000);
    long.push(Buffer.from(`${'x'.repeat(600)}\n\n\nb\n`));
    expect(long.lastLines(1)).toEqual(['b']);
    expect(long.lastLines(5, 10)).toEqual([`${'x'.repeat(10)}…`, 'b']);
  });
});

describe('agentSearchDirs', () => {
  it('puts absolute PATH entries first, drops relative ones and duplicates', async () => {
    const dirs = await agentSearchDirs({
      pathEnv: '/p/one::./rel:bin:/p/two:/p/one',
      homeDir: '/nonexistent-home',
      nodeBinDir: '/node/bin',
      extraDirs: ['/x', 'relative-extra'],
    });
    expect(dirs.slice(0, 3)).toEqual([
      { dir: '/p/one', via: 'PATH' },
      { dir: '/p/two', via: 'PATH' },
      { dir: '/node/bin', via: 'npm-prefix' },
    ]);
    expect(dirs).toContainEqual({ dir: '/nonexistent-home/.local/bin', via: '~/.local/bin' });
    expect(dirs).toContainEqual({ dir: '/nonexistent-home/.npm-global/bin', via: '~/.npm-global/bin' });
    expect(dirs.at(-1)).toEqual({ dir: '/x', via: 'extra' });
    expect(dirs.every((d) => d.dir.startsWith('/'))).toBe(true);
  });
});
