/**
 * The native agent's `run_command`: `/bin/sh -c` in the worktree, in its own process group (the
 * whole group is stopped when the command ends, times out or the turn is cancelled, so a
 * backgrounded child cannot outlive the task), with the agent environment and its output capped.
 */
import { once } from 'node:events';
import { HeadBuffer } from '../capped-output.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from '../process-group.js';

export interface CommandRunner {
  cwd: string;
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  maxOutputBytes: number;
  signal: AbortSignal;
  onSpawn: (pid: number) => Promise<void>;
}

export async function runCommand(r: CommandRunner, command: string): Promise<string> {
  const child = spawnInProcessGroup('/bin/sh', ['-c', command], {
    cwd: r.cwd,
    env: r.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = new HeadBuffer(r.maxOutputBytes);
  let truncated = false;
  const keep = (chunk: Buffer) => {
    if (!out.push(chunk)) truncated = true;
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await waitForSpawn(child);
  } catch {
    return 'error: the shell could not be started';
  }
  if (child.pid !== undefined) await r.onSpawn(child.pid);
  let timedOut = false;
  const stop = () => void terminateProcessGroup(child, { graceMs: 500 });
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, r.timeoutMs);
  r.signal.addEventListener('abort', stop, { once: true });
  try {
    const [code, signal] = await exited;
    // The shell is gone; children it left in the group are not.
    await terminateProcessGroup(child, { graceMs: 0 });
    const status = timedOut
      ? `timed out after ${Math.round(r.timeoutMs / 1000)} s and was stopped`
      : signal
        ? `killed by ${signal}`
        : `exit code ${code}`;
    const cap = truncated ? `\n[output cut at ${r.maxOutputBytes} bytes]` : '';
    return `${status}\n${out.text()}${cap}`;
  } finally {
    clearTimeout(timer);
    r.signal.removeEventListener('abort', stop);
  }
}
