/**
 * A lock file so that bridges starting at the same moment spawn ONE daemon: the embedded
 * database can be opened by one process only, and a second daemon would fail or, worse, race.
 * The lock is created with O_EXCL; it is stale when its holder's pid is dead (a zombie counts as
 * dead) or it is older than `staleMs` (a starter that has not produced a daemon by then has given up).
 */
import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isProcessAlive } from '../process-liveness.js';

export const START_LOCK_FILE = 'daemon.start.lock';

interface LockContent {
  pid: number;
  nonce: string;
  createdAt: number;
}

function parseLock(raw: string): LockContent | undefined {
  try {
    const value = JSON.parse(raw) as Partial<LockContent>;
    if (
      typeof value.pid === 'number' &&
      typeof value.nonce === 'string' &&
      typeof value.createdAt === 'number'
    ) {
      return value as LockContent;
    }
  } catch {
    // Empty or torn: the holder may be between its O_EXCL create and its write.
  }
  return undefined;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isStale(path: string, raw: string, staleMs: number): Promise<boolean> {
  const lock = parseLock(raw);
  if (lock) return !isProcessAlive(lock.pid) || Date.now() - lock.createdAt > staleMs;
  // Unreadable content: judge by age only, so a holder mid-write is not robbed.
  try {
    return Date.now() - (await stat(path)).mtimeMs > staleMs;
  } catch {
    return false;
  }
}

/**
 * Moves the stale lock aside and deletes it, but only if what was moved is the stale lock we
 * judged: if another process broke it and took a fresh lock in between, that one is put back.
 */
async function breakStaleLock(path: string, observed: string): Promise<void> {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readIfExists(aside);
  if (moved !== observed) {
    await link(aside, path).catch(() => {
      // Yet another lock exists already: leave it; the daemon's own database lock is the backstop.
    });
  }
  await rm(aside, { force: true });
}

async function createLock(path: string): Promise<LockContent | undefined> {
  const content: LockContent = { pid: process.pid, nonce: randomUUID(), createdAt: Date.now() };
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    await handle.writeFile(JSON.stringify(content));
  } finally {
    await handle.close();
  }
  return content;
}

/**
 * Takes the start lock in `home`, breaking a stale one. Returns the release function, or
 * undefined when another live process holds the lock.
 */
export async function tryAcquireStartLock(
  home: string,
  staleMs: number,
): Promise<(() => Promise<void>) | undefined> {
  const path = join(home, START_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    const mine = await createLock(path);
    if (mine) {
      return async () => {
        // Remove only our own lock: after a stale-break someone else's may sit here.
        const raw = await readIfExists(path);
        if (raw !== undefined && parseLock(raw)?.nonce === mine.nonce) await rm(path, { force: true });
      };
    }
    const raw = await readIfExists(path);
    if (raw === undefined) continue; // released between our create and our read: try again
    if (!(await isStale(path, raw, staleMs))) return undefined;
    await breakStaleLock(path, raw);
  }
  return undefined;
}
