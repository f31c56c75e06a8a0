/**
 * A real `boocoder serve` (bin/boocoder.js, as users start it) in a child process, found through
 * the daemon.json it writes, plus its resident memory read from /proc. Also a free-port helper and
 * a temp home whose config.json makes the fixture ACP agent the default agent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acpTestAgentSpec } from '../test/fixtures/acp-test-agent.js';
import { REPO_ROOT } from './machine.js';
import { waitFor } from './stats.js';

export const BOOCODER_BIN = join(REPO_ROOT, 'bin', 'boocoder.js');

export interface ServeProcess {
  pid: number;
  url: string;
  home: string;
  /** The serve process's memory now, from /proc. */
  memory(): Promise<MemoryReading>;
  stop(): Promise<void>;
}

/** A folder of its own for BOOCODER_HOME, with the fixture agent configured as the default. */
export async function makeBenchHome(): Promise<string> {
  const home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-bench-')));
  // As root the embedded PostgreSQL runs as `nobody`, who must pass through the home to its pg/.
  await chmod(home, 0o711);
  const spec = acpTestAgentSpec();
  await writeFile(
    join(home, 'config.json'),
    JSON.stringify({
      defaultAgent: 'fixture',
      agents: { fixture: { command: spec.command, args: spec.args } },
    }),
  );
  return home;
}

/** BOOCODER_HOME and, within it, the embedded PostgreSQL's folder (never /var/lib, as root). */
export function benchHomeEnv(home: string): Record<string, string> {
  return { ...baseEnv(), BOOCODER_HOME: home, BOOCODER_PG_DIR: join(home, 'pg') };
}

/** In MB: proportional set size, which shares PostgreSQL's shared buffers fairly among its processes. */
async function pssOf(pid: number): Promise<number> {
  try {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+) kB$/m.exec(rollup)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** PSS in MB of serve plus the embedded PostgreSQL of its home (postmaster and its children). */
export async function embeddedPss(servePid: number, home: string): Promise<number> {
  const pidFile = await readFile(join(home, 'pg', 'data', 'postmaster.pid'), 'utf8');
  const postmaster = Number(pidFile.split('\n')[0]);
  const pids = [servePid, postmaster];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === postmaster) pids.push(Number(entry));
  }
  let total = 0;
  for (const pid of pids) total += await pssOf(pid);
  return total;
}

/** In MB: resident set (VmRSS) and its parts, and the highest it has been (VmHWM). */
export interface MemoryReading {
  rss: number;
  anon: number;
  file: number;
  shmem: number;
  peak: number;
}

export async function readMemory(pid: number): Promise<MemoryReading> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const mb = (field: string) => {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1];
    if (!kb) throw new Error(`no ${field} for process ${pid}`);
    return Number(kb) / 1024;
  };
  return {
    rss: mb('VmRSS'),
    anon: mb('RssAnon'),
    file: mb('RssFile'),
    shmem: mb('RssShmem'),
    peak: mb('VmHWM'),
  };
}

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** The environment a bench child starts from: PATH and HOME only, nothing else of ours leaks in. */
export function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    // Claiming ahead and batched finishes (off by default) are what a queue of no-op jobs needs.
    BOOCODER_CLAIM_AHEAD: '1',
  };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `boocoder serve --port 0` with BOOCODER_HOME=home and the extra env (DATABASE_URL for
 * PostgreSQL; without it the embedded PostgreSQL under home/pg). Resolves once it serves.
 */
export async function startServe(home: string, env: Record<string, string>): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BOOCODER_BIN, 'serve', '--port', '0'], {
    cwd: home,
    env: { ...benchHomeEnv(home), BOOCODER_LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('boocoder serve did not start');
  let url: string;
  try {
    url = await waitFor(
      'boocoder serve to write daemon.json',
      async () => {
        if (child.exitCode !== null) throw new Error(`boocoder serve exited ${child.exitCode}: ${stderr}`);
        try {
          const info = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as {
            pid: number;
            url: string;
          };
          return info.pid === pid ? info.url : undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
      25,
    );
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    pid,
    url,
    home,
    memory: () => readMemory(pid),
    async stop() {
      await stopChild(child);
    },
  };
}

/** Removes a bench home (and the worktrees and PGlite data in it). */
export async function removeHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}
