/**
 * The checks a batch of changes passes before anything is written to the user's checkout: the
 * modes, the path (policy, symlinks, nested repositories) and the file's current bytes. The file
 * system half caches what it learns about each folder for the length of one batch, so a hundred
 * files in one folder cost one lstat of that folder, not a hundred; every guard still runs for
 * every file. Folders the batch creates are checked again after they are made (apply-batch.ts).
 */
import { closeSync, constants, lstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { BoocoderError } from '../errors.js';
import { blobOidOf, formatOf, SYNC_READ_MAX } from './blob-batch.js';
import { assertOid } from './git.js';
import { describePath } from './path-policy.js';

export interface FileChange {
  filePath: string;
  operation: 'create' | 'edit' | 'delete';
  baseOid: string | null;
  resultOid: string | null;
  baseMode: string | null;
  resultMode: string | null;
}

export interface FileState {
  oid: string;
  mode: string;
}

/** Only regular files: a symlink could point the user's files anywhere, a submodule is a repository. */
function checkMode(mode: string | null, filePath: string): void {
  if (mode === null || mode === '100644' || mode === '100755') return;
  const what =
    mode === '120000' ? 'a symlink' : mode === '160000' ? 'a submodule' : `an entry of mode ${mode}`;
  throw new BoocoderError(
    'E_UNSAFE_CHANGE',
    `refusing ${describePath(filePath)}: it is ${what}; only regular files can be applied`,
  );
}

/** The file's state before and after the change (null: the file does not exist). */
export function statesOf(change: FileChange): { base: FileState | null; result: FileState | null } {
  checkMode(change.baseMode, change.filePath);
  checkMode(change.resultMode, change.filePath);
  const state = (oid: string | null, mode: string | null, what: string): FileState => {
    if (oid === null) throw new BoocoderError('E_INVALID_INPUT', `the change has no ${what} blob`);
    return { oid: assertOid(oid, `the ${what} blob id`), mode: mode ?? '100644' };
  };
  switch (change.operation) {
    case 'create':
      return { base: null, result: state(change.resultOid, change.resultMode, 'result') };
    case 'delete':
      return { base: state(change.baseOid, change.baseMode, 'base'), result: null };
    case 'edit':
      return {
        base: state(change.baseOid, change.baseMode, 'base'),
        result: state(change.resultOid, change.resultMode, 'result'),
      };
    default:
      throw new BoocoderError('E_INVALID_INPUT', 'unknown change operation');
  }
}

type Entry = 'missing' | 'symlink' | 'file' | 'other' | 'dir' | 'nested-repo';

/** lstat without following a final symlink; ENOENT is "missing". Synchronous: see SYNC_READ_MAX. */
function entryAt(abs: string): { kind: Entry; size: number } {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (!st) return { kind: 'missing', size: 0 };
  if (st.isSymbolicLink()) return { kind: 'symlink', size: 0 };
  if (st.isDirectory()) return { kind: 'dir', size: 0 };
  return { kind: st.isFile() ? 'file' : 'other', size: st.size };
}

function entryKind(abs: string): Entry {
  try {
    return entryAt(abs).kind;
  } catch (err) {
    // lstat through a path component that is a file
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return 'missing';
    throw err;
  }
}

/** What a path check found: the file's current bytes, and whether folders must be made for it. */
export interface CheckedPath {
  current: Buffer | null;
  needsFolders: boolean;
  /** A folder is there now that the batch's deletions empty: a folder replaced by a file. */
  replacesFolder: boolean;
}

/**
 * Path checks for one batch in one repository. `root` must be a realpath; `deleted` holds the paths
 * the batch deletes (a file on the way of another path may be one: a file replaced by a folder).
 */
export class BatchPathGuard {
  private readonly folders = new Map<string, Entry>();
  private readonly resolved = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly deleted: ReadonlySet<string>,
  ) {}

  /** A folder's kind, looked up once per batch; a folder holding `.git` is a nested repository. */
  private folder(rel: string): Entry {
    let kind = this.folders.get(rel);
    if (kind === undefined) {
      kind = entryKind(join(this.root, rel));
      if (kind === 'dir' && entryKind(join(this.root, rel, '.git')) !== 'missing') kind = 'nested-repo';
      this.folders.set(rel, kind);
    }
    return kind;
  }

  /** The deepest existing folder must also resolve inside the root (once per folder per batch). */
  private assertResolvesInside(dir: string, rel: string): void {
    if (this.resolved.has(dir)) return;
    const real = realpathSync.native(dir);
    if (real !== this.root && !real.startsWith(this.root + sep)) {
      throw new BoocoderError(
        'E_PATH_ESCAPE',
        `refusing the path ${describePath(rel)}: it resolves outside the repository`,
      );
    }
    this.resolved.add(dir);
  }

  /**
   * Checks `rel` (already through path policy) and reads the file there. Refuses a symlink on the
   * way or as the file: a planted `src -> /etc` or `notes.txt -> ~/.ssh/authorized_keys` would
   * turn the write into one outside the repository. Refuses a path inside a nested repository or
   * submodule checkout: the user's repository does not own those files.
   */
  async check(rel: string): Promise<CheckedPath> {
    const parts = rel.split('/');
    const kinds: Entry[] = [];
    let deepest = this.root;
    let prefix = '';
    for (const part of parts.slice(0, -1)) {
      prefix = prefix ? `${prefix}/${part}` : part;
      const kind = this.folder(prefix);
      kinds.push(kind);
      if (kind !== 'dir' && kind !== 'nested-repo') break;
      deepest = join(this.root, prefix);
    }
    // The walk stops at the first folder that is not one, so this is "every folder exists".
    const allThere = kinds.every((k) => k === 'dir' || k === 'nested-repo');
    const abs = join(this.root, rel);
    const file = allThere ? entryAt(abs) : { kind: 'missing' as const, size: 0 };
    if (kinds.includes('symlink') || file.kind === 'symlink') {
      throw new BoocoderError(
        'E_PATH_ESCAPE',
        `refusing the path ${describePath(rel)}: ${file.kind === 'symlink' ? 'the file' : 'a folder on the way'} is a symlink`,
      );
    }
    this.assertResolvesInside(deepest, rel);
    if (kinds.includes('nested-repo')) {
      throw new BoocoderError(
        'E_UNSAFE_CHANGE',
        `refusing ${describePath(rel)}: it lies inside a nested repository`,
      );
    }
    const blocker = kinds.findIndex((k) => k === 'file' || k === 'other');
    if (blocker !== -1 && !this.deleted.has(parts.slice(0, blocker + 1).join('/'))) {
      throw new BoocoderError(
        'E_BASE_MOVED',
        `${describePath(rel)} cannot be written: a folder on its way is now a file; nothing was written`,
      );
    }
    if (file.kind === 'dir' && [...this.deleted].some((d) => d.startsWith(`${rel}/`))) {
      return { current: null, needsFolders: false, replacesFolder: true };
    }
    if (file.kind === 'dir' || file.kind === 'other') {
      throw new BoocoderError(
        'E_BASE_MOVED',
        `${describePath(rel)} is no longer a regular file; nothing was written`,
      );
    }
    return {
      current: file.kind === 'file' ? await readRegularFile(abs, file.size) : null,
      needsFolders: !allThere,
      replacesFolder: false,
    };
  }
}

/**
 * Reads a file lstat found regular. O_NOFOLLOW: if it was swapped for a symlink since, nothing is
 * read; O_NONBLOCK: if it was swapped for a FIFO, the read fails instead of waiting for a writer.
 */
async function readRegularFile(abs: string, size: number): Promise<Buffer> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  if (size <= SYNC_READ_MAX) {
    const fd = openSync(abs, flags);
    try {
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  const handle = await open(abs, flags);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** Whether `current` (null: absent) is the state `state` (null: absent), by blob id. */
export function matches(current: Buffer | null, state: FileState | null): boolean {
  if (state === null) return current === null;
  return current !== null && blobOidOf(current, formatOf(state.oid)) === state.oid;
}
