/**
 * Pinned npm packages that the tests need but that cannot be devDependencies (a Node 22 binary,
 * agents whose `engines` ask for Node 22): each is installed on first use into `.tools/<name>`
 * (git-ignored), once, even when several vitest workers or concurrent runs ask at the same time.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export const run = promisify(execFile);

const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const TOOLS_DIR = join(REPO_ROOT, '.tools');
/** An install holding the lock longer than this has died (npm itself takes seconds to a minute). */
const LOCK_STALE_MS = 10 * 60_000;
const WAIT_MS = 6 * 60_000;

export interface ToolInstall {
  /** Folder name under `.tools/`: lower-case letters, digits and dashes. */
  name: string;
  /** Exact `package@version` specs. */
  packages: readonly string[];
  /** True when the install in `dir` is complete and runs (a half-written one must fail here). */
  isReady: (dir: string) => Promise<boolean>;
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
async function tryLock(lockDir: string): Promise<boolean> {
  try {
    await mkdir(lockDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
  await writeFile(join(lockDir, 'owner'), String(process.pid));
  return true;
}

/** A lock whose owner died (killed test run) would otherwise block every later run. */
async function breakStaleLock(lockDir: string): Promise<void> {
  const owner = Number(await readFile(join(lockDir, 'owner'), 'utf8').catch(() => ''));
  const age = await stat(lockDir).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  const ownerGone = Number.isInteger(owner) && owner > 0 && !isAlive(owner);
  if (ownerGone || age > LOCK_STALE_MS) await rm(lockDir, { recursive: true, force: true });
}

/** Installs into a fresh temp folder and renames it into place: no reader ever sees half an install. */
async function install(tool: ToolInstall, dir: string): Promise<void> {
  for (const entry of await readdir(TOOLS_DIR)) {
    // Temp folders of installs that were killed midway; only removed while holding the lock.
    if (entry.startsWith(`${tool.name}.tmp-`))
      await rm(join(TOOLS_DIR, entry), { recursive: true, force: true });
  }
  const tmp = join(TOOLS_DIR, `${tool.name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await run('npm', ['install', '--prefix', tmp, '--no-save', '--no-audit', '--no-fund', ...tool.packages], {
      timeout: 5 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    if (!(await tool.isReady(tmp))) {
      throw new Error(`npm installed ${tool.packages.join(' ')} but the install does not run`);
    }
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The install folder of `tool`, installing it first if it is missing or broken. */
export async function ensureToolInstalled(tool: ToolInstall): Promise<string> {
  const dir = join(TOOLS_DIR, tool.name);
  if (await tool.isReady(dir)) return dir;
  await mkdir(TOOLS_DIR, { recursive: true });
  const lockDir = join(TOOLS_DIR, `${tool.name}.lock`);
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await tryLock(lockDir)) {
      try {
        // Another worker may have finished while we waited for the lock.
        if (!(await tool.isReady(dir))) await install(tool, dir);
        return dir;
      } finally {
        await rm(lockDir, { recursive: true, force: true });
      }
    }
    await breakStaleLock(lockDir);
    await sleep(250);
    if (await tool.isReady(dir)) return dir;
  }
  throw new Error(`timed out waiting for another process to install ${tool.packages.join(' ')} in ${dir}`);
}
