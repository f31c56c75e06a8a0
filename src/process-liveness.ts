/**
 * Whether a pid names a process that can still hold something (a lock, a pid file, a socket).
 * `kill(pid, 0)` alone is not enough: it succeeds on a zombie, a process that has exited but whose
 * parent has not reaped it yet — or never will, as under node running as pid 1 in a container
 * without an init. A zombie holds nothing (its files are closed, its memory is gone), so a lock
 * naming it is stale. The process state is read from `/proc/<pid>/stat` where there is a /proc;
 * elsewhere the `kill(pid, 0)` answer stands.
 */
import { readFileSync } from 'node:fs';

/** The one-letter state of `pid` (R, S, D, Z, X...), or undefined where /proc cannot tell. */
export function processState(pid: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the state follows its last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] || undefined;
}

/** True while `pid` names a running process, not a zombie (EPERM: it runs, as another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = processState(pid);
  // Z: exited, not reaped; X: being reaped. Neither holds anything any more.
  return state !== 'Z' && state !== 'X';
}
