/**
 * Runs a project's setup or check command in a session worktree: `/bin/sh -c` (the command is the
 * user's shell line), in a process group of its own so that the timeout, a cancel or a shutdown
 * stops everything it started (a test runner's workers, a dev server it forked), with its output
 * capped (only the tail is kept: that is where a failure's reason is).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { TailBuffer } from '../agents/capped-output.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from '../agents/process-group.js';

/** Output kept from a command: enough for a test runner's summary and a stack trace. */
const TAIL_BYTES = 16 * 1024;
const TAIL_LINES = 60;

export interface ProjectCommandResult {
  outcome: 'passed' | 'failed' | 'timeout' | 'error';
  exitCode: number | null;
  durationMs: number;
  /** the last lines of stdout and stderr, interleaved as they came */
  outputTail: string;
}

export interface ProjectCommandInput {
  command: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export async function runProjectCommand(i: ProjectCommandInput): Promise<ProjectCommandResult> {
  const started = performance.now();
  const tail = new TailBuffer(TAIL_BYTES);
  const child = spawnInProcessGroup('/bin/sh', ['-c', i.command], {
    cwd: i.cwd,
    env: i.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const elapsed = () => Math.round(performance.now() - started);
  const text = () => tail.lastLines(TAIL_LINES).join('\n');
  try {
    await waitForSpawn(child);
  } catch (err) {
    return { outcome: 'error', exitCode: null, durationMs: elapsed(), outputTail: (err as Error).message };
  }
  child.stdout?.on('data', (c: Buffer) => tail.push(c));
  child.stderr?.on('data', (c: Buffer) => tail.push(c));
  // 'exit', not 'close': a background process the command left holds the pipes open.
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = new AbortController();
  const timer = delay(i.timeoutMs, 'timeout' as const, { signal: stop.signal }).catch(() => undefined);
  const aborted = i.signal
    ? new Promise<'aborted'>((resolve) => {
        if (i.signal?.aborted) resolve('aborted');
        i.signal?.addEventListener('abort', () => resolve('aborted'), { once: true, signal: stop.signal });
      })
    : undefined;
  const first = await Promise.race([exited, timer, ...(aborted ? [aborted] : [])]);
  stop.abort();
  if (first === 'timeout' || first === 'aborted') {
    await terminateProcessGroup(child);
    await closed;
    const why = first === 'timeout' ? `timed out after ${Math.round(i.timeoutMs / 1000)} s` : 'stopped';
    return {
      outcome: first === 'timeout' ? 'timeout' : 'error',
      exitCode: null,
      durationMs: elapsed(),
      outputTail: `${text()}\n[${why}]`.trim(),
    };
  }
  // The shell exited, but something it started in the background may still be in the group.
  await terminateProcessGroup(child, { graceMs: 500 });
  await closed;
  return {
    outcome: first === 0 ? 'passed' : 'failed',
    exitCode: first ?? null,
    durationMs: elapsed(),
    outputTail: text(),
  };
}
