/**
 * An exclusive lock on PGlite's data directory. PGlite does not lock it itself, and a second
 * process opening the same directory corrupts it silently, so every open takes this lock first.
 *
 * The lock is the file `${dir}.lock` holding {pid, hostname, startedAt, token}. It is created
 * atomically with its content (written to a temp file, then link()ed into place, which fails with
 * EEXIST like O_EXCL), so nobody ever reads a half-written lock. All calls are synchronous so the
 * lock can be released from a process 'exit' handler.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BoocoderError } from '../errors.js';
import { isProcessAlive } from '../process-liveness.js';

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

interface LockRecord {
  pid: number;
  hostname: string;
  startedAt: number;
  token: string;
}

interface Holder extends LockRecord {
  ino: number;
}

/** Locks this process holds, by lock path → token: tells "we hold it" from "a dead process with our pid held it". */
const heldLocks = new Map<string, string>();
let exitHookInstalled = false;

const MAX_ATTEMPTS = 20;
const RETRY_PAUSE_MS = 5;
// A reused pid belongs to a process that started after the lock was written; allow for the
// 1-second resolution of the kernel's boot time.
const PID_REUSE_SLACK_MS = 2000;

export function dataDirLockPath(dir: string): string {
  return `${resolve(dir)}.lock`;
}

export function acquireDataDirLock(dir: string): DataDirLock {
  const lockPath = dataDirLockPath(dir);
  mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const record = newRecord();
    if (tryCreateExclusive(lockPath, record)) return holdLock(lockPath, record.token);
    const holder = readHolder(lockPath);
    if (holder === undefined) continue; // released between our create and our read
    if (isHolderAlive(lockPath, holder)) {
      throw new BoocoderError(
        'E_DATA_DIR_LOCKED',
        `the embedded database is in use by boocoder process ${holder.pid}; use \`boocoder stdio\`, which connects to it, or set DATABASE_URL`,
        { pid: holder.pid },
      );
    }
    if (!breakStaleLock(lockPath, holder)) pause(RETRY_PAUSE_MS);
  }
  throw new BoocoderError(
    'E_DATA_DIR_LOCKED',
    'could not take the embedded database lock: other processes keep contending for it; try again',
  );
}

function newRecord(): LockRecord {
  return { pid: process.pid, hostname: hostname(), startedAt: Date.now(), token: randomUUID() };
}

/** Creates `path` holding `record`, or returns false if it already exists. */
function tryCreateExclusive(path: string, record: LockRecord): boolean {
  const tmp = `${path}.${record.pid}.${record.token}.tmp`;
  writeFileSync(tmp, JSON.stringify(record), { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function readHolder(path: string): Holder | undefined {
  let text: string;
  let ino: number;
  try {
    ino = statSync(path).ino;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockRecord>;
    return {
      pid: Number(parsed.pid),
      hostname: String(parsed.hostname ?? ''),
      startedAt: Number(parsed.startedAt),
      token: String(parsed.token ?? ''),
      ino,
    };
  } catch {
    // Not written by us (creation is atomic): nothing can vouch for it, so it counts as stale.
    return { pid: Number.NaN, hostname: hostname(), startedAt: 0, token: '', ino };
  }
}

function isHolderAlive(lockPath: string, holder: Holder): boolean {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  // A lock from another machine (a shared volume) cannot be checked: assume it is held.
  if (holder.hostname !== hostname()) return true;
  // Our own pid: either we hold it (a second open in this process) or a previous process with the
  // same pid did, as after a container restart where boocoder is pid 1 every time.
  if (holder.pid === process.pid) return heldLocks.get(lockPath) === holder.token;
  // A zombie is not a holder: a daemon killed with -9 whose parent never reaps it would otherwise
  // lock the home for good.
  if (!isProcessAlive(holder.pid)) return false;
  const started = processStartTime(holder.pid);
  return started === undefined || started <= holder.startedAt + PID_REUSE_SLACK_MS;
}

/**
 * Removes a stale lock. Two processes may find the same stale lock at once; if both simply
 * unlinked it, the slower one could delete the lock the faster one had just created, and both
 * would open the directory. So breaking happens under a second lock (`.break`), and only after
 * checking the lock file is still the very file (inode and token) found stale. Returns false when
 * someone else is breaking it right now.
 */
function breakStaleLock(lockPath: string, stale: Holder): boolean {
  const breakPath = `${lockPath}.break`;
  if (!tryCreateExclusive(breakPath, newRecord())) {
    const breaker = readHolder(breakPath);
    // A breaker that died mid-break would block everyone forever. Residual risk, accepted: it
    // needs a process to die within the microseconds of a break and two others to race after.
    if (breaker && !isHolderAlive(breakPath, breaker)) unlinkIfSame(breakPath, breaker);
    return false;
  }
  try {
    unlinkIfSame(lockPath, stale);
    return true;
  } finally {
    unlinkSync(breakPath);
  }
}

function unlinkIfSame(path: string, expected: Holder): void {
  const current = readHolder(path);
  if (current && current.ino === expected.ino && current.token === expected.token) {
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function holdLock(lockPath: string, token: string): DataDirLock {
  heldLocks.set(lockPath, token);
  installExitHook();
  return {
    path: lockPath,
    release: () => releaseLock(lockPath, token),
  };
}

function releaseLock(lockPath: string, token: string): void {
  if (heldLocks.get(lockPath) !== token) return;
  heldLocks.delete(lockPath);
  const current = readHolder(lockPath);
  // Only our own file: never delete a lock another process holds.
  if (current && current.token === token) unlinkIfSame(lockPath, current);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [path, token] of [...heldLocks]) {
      try {
        releaseLock(path, token);
      } catch {
        // Exiting anyway; the next start detects the dead pid and breaks the lock.
      }
    }
  });
}

/** When a process started, in ms since the epoch (Linux /proc only; undefined elsewhere). */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]); // field 22 of stat; fields[0] is field 3
    const btimeLine = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('btime '));
    const bootSeconds = Number(btimeLine?.slice(6));
    if (!Number.isFinite(startTicks) || !Number.isFinite(bootSeconds)) return undefined;
    return (bootSeconds + startTicks / 100) * 1000; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
