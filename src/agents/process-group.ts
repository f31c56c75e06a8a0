/**
 * Agents run in their own process group so that everything they start can be stopped together.
 * Killing only the direct child is not enough: codex's npm wrapper (and many shell wrappers)
 * spawn the real binary as a grandchild and exit or get killed without forwarding the signal,
 * leaving an orphan that keeps editing the worktree and holding memory.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { confinedToWorkingDir } from './agent-env-allowlist.js';

export interface SpawnInGroupOptions {
  cwd: string;
  env: Readonly<Record<string, string>>;
  stdio: StdioOptions;
}

/**
 * Starts `command` directly (never through a shell, so arguments are never re-parsed) as the
 * leader of a new process group whose id equals the child's pid. Every agent process starts here,
 * so this is where its PWD is made its cwd (confinedToWorkingDir says which attack that blocks).
 */
export function spawnInProcessGroup(
  command: string,
  args: readonly string[],
  options: SpawnInGroupOptions,
): ChildProcess {
  return spawn(command, [...args], {
    cwd: options.cwd,
    env: confinedToWorkingDir(options.env, options.cwd),
    stdio: options.stdio,
    detached: true,
    shell: false,
    windowsHide: true,
  });
}

/** Resolves once the process is running; rejects with the spawn error (ENOENT, EACCES...). */
export function waitForSpawn(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const onSpawn = () => {
      child.off('error', onError);
      resolve();
    };
    const onError = (err: Error) => {
      child.off('spawn', onSpawn);
      reject(err);
    };
    child.once('spawn', onSpawn);
    child.once('error', onError);
  });
}

function groupIdOf(target: ChildProcess | number): number | undefined {
  const pid = typeof target === 'number' ? target : target.pid;
  // pid 0 or negative would signal our own group or every process we may signal: never do that.
  return pid !== undefined && Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/** Sends `signal` to every process in the group. False when the group no longer exists. */
export function killProcessGroup(target: ChildProcess | number, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  const pgid = groupIdOf(target);
  if (pgid === undefined) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** True while any process (zombies included, until reaped) is still in the group. */
export function isProcessGroupAlive(target: ChildProcess | number): boolean {
  const pgid = groupIdOf(target);
  if (pgid === undefined) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitForGroupExit(target: ChildProcess | number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isProcessGroupAlive(target)) {
    if (Date.now() >= deadline) return false;
    await delay(20);
  }
  return true;
}

export type TerminationOutcome = 'already-gone' | 'terminated' | 'killed' | 'lingering';

/**
 * SIGTERM to the whole group, up to `graceMs` to exit, then SIGKILL and up to `killWaitMs` for the
 * kernel (and init, for reparented grandchildren) to clear them. 'lingering' means something
 * survived SIGKILL (uninterruptible sleep, or a process that left the group with setsid).
 */
export async function terminateProcessGroup(
  target: ChildProcess | number,
  options: { graceMs?: number; killWaitMs?: number } = {},
): Promise<TerminationOutcome> {
  // Reparented grandchildren stay zombies until init reaps them; some inits (the firecracker one
  // on our CI machines) take 1-2 s to do so, hence the generous default.
  const { graceMs = 2000, killWaitMs = 5000 } = options;
  if (!killProcessGroup(target, 'SIGTERM')) return 'already-gone';
  if (graceMs > 0 && (await waitForGroupExit(target, graceMs))) return 'terminated';
  killProcessGroup(target, 'SIGKILL');
  return (await waitForGroupExit(target, killWaitMs)) ? 'killed' : 'lingering';
}
