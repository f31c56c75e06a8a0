/**
 * Leak detector for temp folders: a `boocoder-*` folder that `mkdtemp` made in this process and
 * that still exists after the file's cleanup, with the git worktrees registered in the
 * repositories it holds (a repository that outlives its test keeps its worktrees registered).
 *
 * Folders are recorded where they are made, by wrapping the three `mkdtemp`s (`fs`, its sync
 * form and `fs/promises`) and re-syncing the ES module bindings so `import { mkdtemp }` sees the
 * wrapper. A before/after listing of the temp folder could not tell whose folder is whose: two
 * test files run at once.
 */
import fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { captureCreationStack, creationSite, type Leak } from './chaos-leak-common.js';

const PREFIX = 'boocoder-';

interface MadeDir {
  seq: number;
  path: string;
  stack: Error;
}

let seq = 0;
const madeDirs: MadeDir[] = [];
let installed = false;

function record(dir: unknown): void {
  const path = String(dir);
  if (basename(path).startsWith(PREFIX)) madeDirs.push({ seq: ++seq, path, stack: captureCreationStack() });
}

function install(): void {
  if (installed) return;
  installed = true;
  const mkdtempSync = fs.mkdtempSync;
  fs.mkdtempSync = function recordMkdtempSync(...args: unknown[]) {
    const dir = Reflect.apply(mkdtempSync, fs, args);
    record(dir);
    return dir;
  } as typeof mkdtempSync;

  const mkdtemp = fs.mkdtemp;
  fs.mkdtemp = function recordMkdtemp(...args: unknown[]) {
    const callback = args.pop() as (err: Error | null, dir?: unknown) => void;
    const recording = (err: Error | null, dir?: unknown) => {
      if (!err) record(dir);
      callback(err, dir);
    };
    return Reflect.apply(mkdtemp, fs, [...args, recording]);
  } as typeof mkdtemp;

  const mkdtempPromise = fs.promises.mkdtemp;
  fs.promises.mkdtemp = async function recordMkdtempPromise(...args: unknown[]) {
    const dir = await Reflect.apply(mkdtempPromise, fs.promises, args);
    record(dir);
    return dir;
  } as typeof mkdtempPromise;
  syncBuiltinESMExports();
}

function listDirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

/**
 * The worktrees registered in repositories at `dir` or one level below it (tests put a repository
 * at the folder itself or in a subfolder), read from `.git/worktrees/<name>/gitdir` without git.
 */
export function registeredWorktrees(dir: string): string[] {
  const out: string[] = [];
  for (const repo of [dir, ...listDirs(dir)]) {
    for (const admin of listDirs(join(repo, '.git', 'worktrees'))) {
      try {
        out.push(dirname(fs.readFileSync(join(admin, 'gitdir'), 'utf8').trim()));
      } catch {
        out.push(`${admin} (no gitdir file)`);
      }
    }
  }
  return out;
}

function tempDirLeak(made: MadeDir): Leak {
  const worktrees = registeredWorktrees(made.path);
  const registered = worktrees.length > 0 ? `, with git worktrees registered: ${worktrees.join(', ')}` : '';
  return {
    kind: 'temp dir',
    description: `${made.path}${registered}, made at ${creationSite(made.stack)}`,
    release: () => rm(made.path, { recursive: true, force: true }),
  };
}

export interface TempDirTracker {
  find(): Leak[];
  /** Only folders made from now on count: the next file starts from nothing. */
  reset(): void;
}

export function trackTempDirs(): TempDirTracker {
  install();
  let since = seq;
  return {
    find() {
      return madeDirs.filter((made) => made.seq > since && fs.existsSync(made.path)).map(tempDirLeak);
    },
    reset() {
      since = seq;
    },
  };
}
