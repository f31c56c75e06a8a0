/**
 * The soak's dispatchers: several real `boocoder serve` processes (bin/boocoder.js, as users start
 * it) on one PostgreSQL database and one BOOCODER_HOME, as several servers on one machine are
 * deployed: a session's worktree lives under the home, and whichever dispatcher claims the
 * session's next task must find it there.
 *
 * Started here rather than with startServe because the soak must notice a dispatcher that dies
 * mid-run and say why: each one's exit is watched and the end of its stderr kept.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BOOCODER_BIN, baseEnv, type MemoryReading, readMemory, stopChild } from './serve-process.js';
import { waitFor } from './stats.js';

const STDERR_KEPT = 8000;
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * CPU seconds (user + system) a process has used, plus, when asked, those of the children it has
 * waited for (a serve's git runs); undefined once the process is gone.
 */
export async function cpuSeconds(pid: number, withReapedChildren: boolean): Promise<number | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces: count fields after its closing parenthesis (field 3 onwards).
  const [utime = 0, stime = 0, cutime = 0, cstime = 0] = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 15)
    .map(Number);
  return (utime + stime + (withReapedChildren ? cutime + cstime : 0)) / CLOCK_TICKS_PER_S;
}

export interface SoakDispatcher {
  pid: number;
  /** Set once the process has exited: how, and the end of its stderr. */
  death(): string | undefined;
}

export interface DispatcherFleet {
  dispatchers: readonly SoakDispatcher[];
  /** The memory of every dispatcher now, in start order; fails naming a dispatcher that died. */
  memory(): Promise<MemoryReading[]>;
  /** CPU seconds all dispatchers and the children they reaped (git) have used so far. */
  cpuSeconds(): Promise<number>;
  /** Throws when a dispatcher has died (a soak must not go on with fewer than it reports). */
  assertAlive(): void;
  stop(): Promise<void>;
}

interface Started {
  child: ChildProcess;
  dispatcher: SoakDispatcher;
}

/** True once daemon.json in home names this pid: the serve is listening and its dispatcher runs. */
async function servesNow(home: string, pid: number): Promise<boolean> {
  try {
    const info = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { pid: number };
    return info.pid === pid;
  } catch {
    return false;
  }
}

async function startOne(home: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [BOOCODER_BIN, 'serve', '--port', '0'], {
    cwd: home,
    env: { ...baseEnv(), BOOCODER_HOME: home, BOOCODER_LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('boocoder serve did not start');
  let stderr = '';
  let death: string | undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_KEPT);
  });
  child.once('exit', (code, signal) => {
    death = `dispatcher ${pid} exited (code ${code}, signal ${signal}); its stderr ends with:\n${stderr}`;
  });
  const started = { child, dispatcher: { pid, death: () => death } };
  try {
    await waitFor(
      'boocoder serve to write daemon.json',
      async () => {
        if (death) throw new Error(death);
        return (await servesNow(home, pid)) || undefined;
      },
      60_000,
      25,
    );
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return started;
}

/**
 * Starts `count` serves one after another: each writes daemon.json into the shared home, and is
 * recognised by its pid there, so they must not start at the same moment.
 */
export async function startDispatchers(
  count: number,
  home: string,
  env: Record<string, string>,
): Promise<DispatcherFleet> {
  const started: Started[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => stopChild(s.child)));
  };
  try {
    for (let i = 0; i < count; i++) started.push(await startOne(home, env));
  } catch (err) {
    await stop();
    throw err;
  }
  const dispatchers = started.map((s) => s.dispatcher);
  const assertAlive = () => {
    const dead = dispatchers.find((d) => d.death());
    if (dead) throw new Error(dead.death());
  };
  return {
    dispatchers,
    async memory() {
      assertAlive();
      try {
        return await Promise.all(dispatchers.map((d) => readMemory(d.pid)));
      } catch (err) {
        // A process gone between the check and the read: say which one and why, not ENOENT.
        assertAlive();
        throw err;
      }
    },
    async cpuSeconds() {
      const each = await Promise.all(dispatchers.map((d) => cpuSeconds(d.pid, true)));
      return each.reduce((sum: number, s) => sum + (s ?? 0), 0);
    },
    assertAlive,
    stop,
  };
}
