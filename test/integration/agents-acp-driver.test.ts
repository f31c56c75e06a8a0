import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunAcpTaskOptions, runAcpTask } from '../../src/agents/acp/driver.js';
import type { AgentTurnResult } from '../../src/agents/agent-backend.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { BoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';

const baseEnv: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined) baseEnv[k] = v;

let dir: string;
const pids: number[] = [];

beforeEach(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-acp-')));
});

afterEach(async () => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await rm(dir, { recursive: true, force: true });
});

function run(prompt: string, extra: Partial<RunAcpTaskOptions> = {}): Promise<AgentTurnResult> {
  return runAcpTask({
    spec: acpTestAgentSpec(),
    cwd: dir,
    prompt,
    env: baseEnv,
    timeoutMs: 30_000,
    logger: silentLogger,
    ...extra,
  });
}

async function runError(prompt: string, extra: Partial<RunAcpTaskOptions> = {}): Promise<BoocoderError> {
  const err = await run(prompt, extra).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BoocoderError);
  return err as BoocoderError;
}

/** Watches the agent's messages for `pid:N` / `child:N` and runs `onPid` once both asked-for pids are known. */
function pidWatcher(wanted: string[], onAll: (pids: Record<string, number>) => void) {
  const seen: Record<string, number> = {};
  return (update: { sessionUpdate: string; content?: unknown }) => {
    const content = update.content as { type?: string; text?: string } | undefined;
    if (update.sessionUpdate !== 'agent_message_chunk' || content?.type !== 'text') return;
    const match = /^(\w+):(\d+)/.exec(content.text ?? '');
    if (!match?.[1] || !match[2]) return;
    seen[match[1]] = Number(match[2]);
    pids.push(Number(match[2]));
    if (wanted.every((w) => w in seen)) onAll(seen);
  };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
}

describe('runAcpTask against the ACP test agent', () => {
  it('makes the edits on disk and reports output, updates, usage and agent info', async () => {
    const result = await run(
      [
        'write src/a.txt hello\\nworld',
        'append src/a.txt !',
        'write gone.txt x',
        'delete gone.txt',
        'write run.sh #!/bin/sh',
        'chmod+x run.sh',
        'say all done',
        'usage 1200 340 0.25',
      ].join('\n'),
    );
    expect(await readFile(join(dir, 'src/a.txt'), 'utf8')).toBe('hello\nworld!');
    await expect(stat(join(dir, 'gone.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await stat(join(dir, 'run.sh'))).mode & 0o111).toBe(0o111);
    expect(result).toMatchObject({
      stopReason: 'end_turn',
      outputText: 'all done',
      outputTruncated: false,
      updates: 2,
      usage: { inputTokens: 1200, outputTokens: 340, cost: 0.25, currency: 'USD' },
      agentInfo: { name: 'acp-test-agent', version: '1.0.0' },
    });
    expect(result.agentSessionId).toMatch(/^[0-9a-f-]{36}$/);
  }, 30_000);

  it('answers permission requests with allow_once even when allow_always is offered first', async () => {
    const result = await run('ask-permission\nwrite granted.txt yes');
    expect(result.outputText).toBe('permission:once\n');
    expect(await readFile(join(dir, 'granted.txt'), 'utf8')).toBe('yes');
  }, 30_000);

  it('caps the kept output text', async () => {
    const result = await run('say 0123456789abcdef', { maxOutputChars: 10 });
    expect(result.outputText).toBe('0123456789');
    expect(result.outputTruncated).toBe(true);
  }, 30_000);

  it('passes every update to onUpdate and survives a throwing callback', async () => {
    const seen: string[] = [];
    const result = await run('say one\nsay two', {
      onUpdate: (u) => {
        seen.push(u.sessionUpdate);
        throw new Error('callback bug');
      },
    });
    expect(seen).toEqual(['agent_message_chunk', 'agent_message_chunk']);
    expect(result.outputText).toBe('onetwo');
  }, 30_000);

  it('cancels on abort: session/cancel, stopReason cancelled, and the whole process group is gone', async () => {
    const abort = new AbortController();
    let seen: Record<string, number> = {};
    const result = await run('pid\nspawn-child\nsleep 30000', {
      signal: abort.signal,
      killGraceMs: 200,
      onUpdate: pidWatcher(['pid', 'child'], (p) => {
        seen = p;
        abort.abort();
      }),
    });
    expect(result.stopReason).toBe('cancelled');
    expect(result.agentSessionId).not.toBeNull();
    expect(seen.pid).toBeGreaterThan(1);
    expect(processExists(seen.pid as number)).toBe(false);
    // The child ignores SIGTERM: only the group SIGKILL removes it.
    expect(processExists(seen.child as number)).toBe(false);
    expect(isProcessGroupAlive(seen.pid as number)).toBe(false);
  }, 30_000);

  it('returns cancelled without starting anything when the signal is already aborted', async () => {
    const result = await run('write never.txt x', { signal: AbortSignal.abort() });
    expect(result).toMatchObject({ stopReason: 'cancelled', agentSessionId: null, updates: 0 });
    await expect(stat(join(dir, 'never.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('throws E_AGENT_TIMEOUT when the prompt outlives timeoutMs, and kills the group', async () => {
    let seen: Record<string, number> = {};
    const err = await runError('pid\nspawn-child\nsleep 30000', {
      timeoutMs: 3000,
      killGraceMs: 200,
      onUpdate: pidWatcher(['pid', 'child'], (p) => {
        seen = p;
      }),
    });
    expect(err.code).toBe('E_AGENT_TIMEOUT');
    expect(err.details).toMatchObject({ timeoutMs: 3000, endedCleanly: true });
    expect(processExists(seen.pid as number)).toBe(false);
    expect(processExists(seen.child as number)).toBe(false);
  }, 30_000);

  it('throws E_AGENT_TIMEOUT when the agent never answers initialize', async () => {
    const err = await runError('x', {
      spec: { ...acpTestAgentSpec(), command: '/bin/sleep', args: ['1000'] },
      timeoutMs: 300,
      killGraceMs: 200,
    });
    expect(err.code).toBe('E_AGENT_TIMEOUT');
  }, 30_000);

  it('maps a crash mid-prompt to E_AGENT_FAILED with exit code and stderr in details only', async () => {
    const err = await runError('write before.txt kept\ncrash\nwrite after.txt never');
    expect(err.code).toBe('E_AGENT_FAILED');
    expect(err.details).toMatchObject({ phase: 'session/prompt', exitCode: 1 });
    expect(err.details?.stderrTail).toContain('acp-test-agent: crashing on purpose');
    expect(err.message).not.toContain('crashing on purpose');
    expect(await readFile(join(dir, 'before.txt'), 'utf8')).toBe('kept');
    await expect(stat(join(dir, 'after.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 30_000);

  it('maps a process that is not an ACP agent to E_AGENT_FAILED', async () => {
    const err = await runError('x', { spec: { ...acpTestAgentSpec(), command: '/bin/true', args: [] } });
    expect(err.code).toBe('E_AGENT_FAILED');
    expect(err.details).toMatchObject({ phase: 'initialize', exitCode: 0 });
  }, 30_000);

  it('maps a failed prompt request and an unknown script line to E_AGENT_FAILED', async () => {
    const failed = await runError('fail out of cheese');
    expect(failed.code).toBe('E_AGENT_FAILED');
    expect(failed.details).toMatchObject({ phase: 'session/prompt', rpcCode: -32603 });
    expect(String(failed.details?.agentError)).toContain('out of cheese');
    const unknown = await runError('frobnicate now');
    expect(unknown.code).toBe('E_AGENT_FAILED');
    expect(unknown.details).toMatchObject({ rpcCode: -32602 });
  }, 30_000);

  it('throws E_AGENT_NOT_FOUND with an install hint for a missing binary', async () => {
    const err = await runError('x', {
      spec: { ...acpTestAgentSpec(), command: 'boocoder-no-such-agent', installHint: 'npm i -g example' },
    });
    expect(err.code).toBe('E_AGENT_NOT_FOUND');
    expect(err.message).toContain('npm i -g example');
  });

  it('refuses a missing working directory and a malformed spec before spawning', async () => {
    const missing = await runError('x', { cwd: join(dir, 'nope') });
    expect(missing.code).toBe('E_INVALID_INPUT');
    const badName = await runError('x', { spec: { ...acpTestAgentSpec(), name: '--foo' } });
    expect(badName.code).toBe('E_INVALID_INPUT');
    const badCommand = await runError('x', { spec: { ...acpTestAgentSpec(), command: '../x' } });
    expect(badCommand.code).toBe('E_INVALID_INPUT');
  });
});
