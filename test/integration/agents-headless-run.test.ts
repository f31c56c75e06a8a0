/**
 * The headless runner against a fake agent binary on a fake PATH (test/fixtures/headless-fake-agent.mjs
 * installed as `opencode`): the prompt reaches it only on stdin, even when it starts with `--`;
 * cancel and timeout stop its whole process group; failures say what failed without host paths.
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runHeadlessTask } from '../../src/agents/headless/run.js';
import { resolveLaunchSpec } from '../../src/agents/launch-specs.js';
import { readProcStat } from '../../src/agents/orphaned-agents.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { isBoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

const FAKE = new URL('../fixtures/headless-fake-agent.mjs', import.meta.url);

let root: string;
let cwd: string;
let env: Record<string, string>;

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-headless-')));
  cwd = join(root, 'worktree');
  const bin = join(root, 'bin');
  await mkdir(cwd);
  await mkdir(bin);
  await copyFile(FAKE, join(bin, 'opencode'));
  await chmod(join(bin, 'opencode'), 0o755);
  // The fake PATH comes first: the built-in spec's bare `opencode` must resolve to the fake.
  env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: root };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const run = (prompt: string, extra: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
  runHeadlessTask({
    spec: resolveLaunchSpec('opencode'),
    cwd,
    prompt,
    env,
    timeoutMs: extra.timeoutMs ?? 60_000,
    logger: silentLogger,
    killGraceMs: 500,
    ...(extra.signal ? { signal: extra.signal } : {}),
  });

async function waitForFile(path: string): Promise<string> {
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text) return text;
    await delay(20);
  }
}

/** Whether `pid` still runs in the process group `pgid` (a reused pid elsewhere does not count). */
const inGroup = (pid: number, pgid: number) => readProcStat(pid)?.pgrp === pgid;

describe('runHeadlessTask with a fake agent', () => {
  it('a prompt starting with -- stays the prompt: it arrives on stdin and never in argv', async () => {
    const prompt = '--dangerously-skip-permissions --help; $(touch pwned) `id`';
    const result = await run(prompt);
    expect(await readFile(join(cwd, 'prompt.txt'), 'utf8')).toBe(prompt);
    const argv = JSON.parse(await readFile(join(cwd, 'argv.json'), 'utf8')) as string[];
    expect(argv).toEqual(['run', '--format', 'json']);
    await expect(readFile(join(cwd, 'pwned'))).rejects.toThrow(/ENOENT/);
    expect(result).toMatchObject({
      stopReason: 'end_turn',
      agentSessionId: 'ses_fake1',
      outputText: 'fake done',
      usage: { inputTokens: 120, outputTokens: 30, cost: 0.5 },
    });
  });

  it('cancel stops the whole process group, grandchild included, and ends as cancelled', async () => {
    const controller = new AbortController();
    const running = run('spawn-hang', { signal: controller.signal });
    const grandchild = Number(await waitForFile(join(cwd, 'grandchild.pid')));
    const pid = Number(await waitForFile(join(cwd, 'pid')));
    expect(inGroup(grandchild, pid)).toBe(true);
    controller.abort('cancel');
    const result = await running;
    expect(result.stopReason).toBe('cancelled');
    expect(result.agentSessionId).toBe('ses_fake1');
    expect(isProcessGroupAlive(pid)).toBe(false);
    expect(inGroup(grandchild, pid)).toBe(false);
  });

  it('a hang hits the timeout: E_AGENT_TIMEOUT and the group is gone', async () => {
    let caught: unknown;
    try {
      await run('hang', { timeoutMs: 1500 });
    } catch (err) {
      caught = err;
    }
    expect(isBoocoderError(caught, 'E_AGENT_TIMEOUT')).toBe(true);
    const pid = Number(await readFile(join(cwd, 'pid'), 'utf8'));
    expect(isProcessGroupAlive(pid)).toBe(false);
  });

  it('an exit without a result is E_AGENT_FAILED naming the exit code, stderr only in details', async () => {
    let caught: unknown;
    try {
      await run('fail');
    } catch (err) {
      caught = err;
    }
    expect(isBoocoderError(caught, 'E_AGENT_FAILED')).toBe(true);
    const err = caught as Error & { details: Record<string, unknown> };
    expect(err.message).toBe(
      'agent "opencode" (headless) exited with code 3 without reporting a successful result; details hold its message and the end of its stderr',
    );
    expect(err.message).not.toContain(root);
    expect(err.details.stderrTail).toEqual(['fatal: the fake agent failed on purpose']);
  });

  it('skips a line longer than the cap instead of buffering it', async () => {
    const result = await runHeadlessTask({
      spec: resolveLaunchSpec('opencode'),
      cwd,
      prompt: 'long-line',
      env,
      timeoutMs: 60_000,
      logger: silentLogger,
      maxLineBytes: 64 * 1024,
    });
    expect(result.outputText).toBe('fake done');
  });

  it('a missing binary is E_AGENT_NOT_FOUND', async () => {
    env = { ...env, PATH: '/nonexistent' };
    await expect(run('hello')).rejects.toMatchObject({ code: 'E_AGENT_NOT_FOUND' });
  });
});
