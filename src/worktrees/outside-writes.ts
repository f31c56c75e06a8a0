/**
 * Noticing an agent that wrote outside its worktree, cheaply, around one turn.
 *
 * Agents start in their worktree with PWD pointing there (agent-env-allowlist.ts), but nothing
 * stops a model from writing to an absolute path, and such a write lands past review: it is no
 * pending change, and the task would end `completed` as if nothing happened. Two places are
 * watched, because they are where a misdirected agent ends up (its "current directory" taken from
 * the wrong place, or the project's real path it saw in its prompt or in git's output):
 * - the project's checkout: `git status` (tracked changes and untracked files, not ignored ones)
 *   before and after the turn, each listed path with its size and mtime;
 * - boocoder's own working directory, when it is not inside the checkout or boocoder's home: the
 *   names of its top-level entries (new names only: other programs touch existing files there).
 * Limits (docs/agent-environment.md): writes elsewhere, into ignored files, or into an existing
 * file of the server's directory are not seen; a change the user (or another task's agent) makes
 * in the checkout during the turn is counted too (apply_change's own writes are not); a checkout with more than MAX_ENTRIES changed
 * paths, or whose status git cannot give, is not watched for that turn.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { BoocoderError } from '../errors.js';
import { hardenedOptions, runGitBuffer } from './git.js';

/** More changed paths than this in the checkout and the check is skipped (it would cost a stat each). */
const MAX_ENTRIES = 2000;
const MAX_STATUS_BYTES = 4 * 1024 * 1024;
const STATUS_TIMEOUT_MS = 30_000;
const NAMES_SHOWN = 10;

export interface OutsideWrites {
  /** Paths, relative to the project, that changed in its checkout during the turn. */
  projectFiles: string[];
  /** How many entries appeared in boocoder's working directory. */
  serverDirEntries: number;
}

export interface OutsideWriteWatch {
  /** What changed since the watch started (nothing when nothing could be watched). */
  changes(): Promise<OutsideWrites>;
}

export interface WatchOutsideOptions {
  projectRoot: string;
  /** boocoder's working directory; defaults to process.cwd(). */
  serverDir?: string;
  /** boocoder's home: worktrees and agent homes live there and change on every task. */
  home: string;
  /**
   * Paths (relative to the project) that apply_change wrote since `since`; asked only when the
   * checkout changed. Those writes are boocoder's own, not the agent's.
   */
  appliedSince?: (since: Date) => Promise<readonly string[]>;
}

/** How far before the turn an apply counts as "during it": its transaction stamps the row after its writes. */
const APPLY_MARGIN_MS = 60_000;

/** A status path (`dir/` for a whole untracked folder) that one of `applied` accounts for. */
const isApplied = (path: string, applied: readonly string[]) =>
  applied.some((a) => a === path || (path.endsWith('/') && a.startsWith(path)));

const isWithin = (dir: string, root: string) => {
  const rel = relative(root, dir);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
};

/** Each changed path of the checkout with its size and mtime; undefined when not cheap or possible. */
async function checkoutState(root: string): Promise<Map<string, string> | undefined> {
  try {
    const opts = await hardenedOptions({
      cwd: root,
      maxBuffer: MAX_STATUS_BYTES,
      timeoutMs: STATUS_TIMEOUT_MS,
    });
    const args = [
      'status',
      '--porcelain=v1',
      '-z',
      '--no-renames',
      '--untracked-files=normal',
      '--ignore-submodules=all',
    ];
    const { stdout, exitCode } = await runGitBuffer(args, opts);
    if (exitCode !== 0) return undefined;
    const records = stdout.toString('utf8').split('\0').filter(Boolean);
    if (records.length > MAX_ENTRIES) return undefined;
    const state = new Map<string, string>();
    for (const record of records) {
      const path = record.slice(3);
      const info = await stat(join(root, path)).catch(() => undefined);
      state.set(path, `${record.slice(0, 2)}:${info ? `${info.size}:${info.mtimeMs}` : 'gone'}`);
    }
    return state;
  } catch {
    return undefined;
  }
}

/** process.cwd() throws when the directory was deleted: then there is nothing to watch. */
function currentDir(): string | undefined {
  try {
    return process.cwd();
  } catch {
    return undefined;
  }
}

async function entryNames(dir: string): Promise<Set<string> | undefined> {
  try {
    return new Set(await readdir(dir));
  } catch {
    return undefined;
  }
}

/** Starts watching; call changes() once the turn is over. Never throws. */
export async function watchOutsideWrites(o: WatchOutsideOptions): Promise<OutsideWriteWatch> {
  const startedAt = new Date(Date.now() - APPLY_MARGIN_MS);
  const serverDir = o.serverDir ?? currentDir();
  const watchServerDir =
    serverDir !== undefined && !isWithin(serverDir, o.projectRoot) && !isWithin(serverDir, o.home);
  const [checkoutBefore, serverBefore] = await Promise.all([
    checkoutState(o.projectRoot),
    watchServerDir ? entryNames(serverDir) : undefined,
  ]);
  return {
    async changes() {
      const [checkoutAfter, serverAfter] = await Promise.all([
        checkoutBefore ? checkoutState(o.projectRoot) : undefined,
        serverBefore && serverDir ? entryNames(serverDir) : undefined,
      ]);
      let projectFiles =
        checkoutBefore && checkoutAfter
          ? [...new Set([...checkoutBefore.keys(), ...checkoutAfter.keys()])]
              .filter((p) => checkoutBefore.get(p) !== checkoutAfter.get(p))
              .sort()
          : [];
      if (projectFiles.length > 0 && o.appliedSince) {
        const applied = await o.appliedSince(startedAt).catch(() => undefined);
        // Unknown: better silent than blaming the agent for boocoder's own writes.
        projectFiles = applied ? projectFiles.filter((p) => !isApplied(p, applied)) : [];
      }
      const serverDirEntries =
        serverBefore && serverAfter ? [...serverAfter].filter((n) => !serverBefore.has(n)).length : 0;
      return { projectFiles, serverDirEntries };
    },
  };
}

/**
 * The task's error when something changed outside the worktree, else undefined. Names files only
 * relative to the project and only counts the server directory's entries: its path, and theirs,
 * are host paths the client's model must not see.
 */
export function outsideWriteError(w: OutsideWrites): BoocoderError | undefined {
  const parts: string[] = [];
  if (w.projectFiles.length > 0) {
    const shown = w.projectFiles.slice(0, NAMES_SHOWN).map((p) => p.slice(0, 200));
    const more =
      w.projectFiles.length > NAMES_SHOWN ? `, and ${w.projectFiles.length - NAMES_SHOWN} more` : '';
    parts.push(
      `${w.projectFiles.length} path(s) changed in the project's own checkout (${shown.join(', ')}${more})`,
    );
  }
  if (w.serverDirEntries > 0) {
    const entries = w.serverDirEntries === 1 ? 'entry' : 'entries';
    parts.push(`${w.serverDirEntries} new ${entries} appeared in the folder boocoder was started from`);
  }
  if (parts.length === 0) return undefined;
  return new BoocoderError(
    'E_AGENT_WROTE_OUTSIDE_WORKTREE',
    `while the agent ran, ${parts.join(' and ')}: writes outside its worktree bypass review. ` +
      'Inspect and undo what you did not make yourself (your own edits during the task count too); ' +
      'what the agent changed in its worktree is pending as usual.',
    { projectFiles: w.projectFiles.length, serverDirEntries: w.serverDirEntries },
  );
}
