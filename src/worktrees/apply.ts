/**
 * Byte-exact apply and revert of one captured file change into the user's working tree. Not via
 * `git apply`: the exact before/after blobs are in the repository's object store (worktrees share
 * it), so a change is "the file must hash to X; make it hold Y". If the file on disk is not X,
 * nothing is written (E_BASE_MOVED): the user's own edits are never overwritten.
 */

import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readFile, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { BoocoderError } from '../errors.js';
import { assertOid, runGitBuffer } from './git.js';
import { assertNoSymlinkInPath, assertSafeRepoPath, describePath } from './path-policy.js';

const inflateAsync = promisify(inflate);

export interface FileChange {
  filePath: string;
  operation: 'create' | 'edit' | 'delete';
  baseOid: string | null;
  resultOid: string | null;
  baseMode: string | null;
  resultMode: string | null;
}

/** The largest file apply writes; capture refuses larger ones, so every captured change can be applied. */
export const MAX_FILE_BYTES = 1024 * 1024 * 1024;

/** The git blob id of some bytes, computed in-process: nothing (no clean filter) can run. */
export function blobOidOf(bytes: Buffer, format: 'sha1' | 'sha256' = 'sha1'): string {
  return createHash(format).update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

function formatOf(oid: string): 'sha1' | 'sha256' {
  return oid.length === 64 ? 'sha256' : 'sha1';
}

/**
 * The blob's bytes from the loose object file `.git/objects/xx/yyyy`, read and inflated in-process:
 * a capture writes every blob it records as a loose object, so applying one needs no git process.
 * Null when the object is not there as a loose file (packed, or `.git` is not a plain folder).
 */
async function readLooseBlob(repoRoot: string, oid: string): Promise<Buffer | null> {
  const path = join(repoRoot, '.git', 'objects', oid.slice(0, 2), oid.slice(2));
  let compressed: Buffer;
  try {
    // A FIFO or a link to /dev/zero planted there must not hang or exhaust the server: no link is
    // followed, opening does not wait for a FIFO's writer, and only a regular file of bounded size
    // is read. The content itself is checked against the oid by the caller.
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      if (!st.isFile() || st.size > MAX_FILE_BYTES) return null;
      compressed = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
  let object: Buffer;
  try {
    object = await inflateAsync(compressed, { maxOutputLength: MAX_FILE_BYTES + 64 });
  } catch {
    return null; // not a loose object git wrote: let git read the store
  }
  const nul = object.indexOf(0);
  const header = object.subarray(0, nul === -1 ? 0 : nul).toString('latin1');
  const body = object.subarray(nul + 1);
  return header === `blob ${body.length}` ? body : null;
}

/** Reads a blob's raw bytes from the repository's object store and checks they hash to `oid`. */
export async function readBlob(repoRoot: string, oid: string): Promise<Buffer> {
  assertOid(oid, 'the blob id');
  const format = formatOf(oid);
  // The hash is the proof that a loose file read directly holds this blob and nothing else.
  const loose = await readLooseBlob(repoRoot, oid);
  if (loose && blobOidOf(loose, format) === oid) return loose;
  const bytes = (await runGitBuffer(['cat-file', 'blob', oid], { cwd: repoRoot, maxBuffer: MAX_FILE_BYTES }))
    .stdout;
  // Belt and braces against object replacement (refs/replace is also disabled in git.ts).
  if (blobOidOf(bytes, format) !== oid) {
    throw new BoocoderError('E_GIT_FAILED', `the object store returned other bytes for blob ${oid}`);
  }
  return bytes;
}

interface FileState {
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

function statesOf(change: FileChange): { base: FileState | null; result: FileState | null } {
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

/**
 * Refuses a path inside a nested repository or submodule checkout (a folder with its own `.git`):
 * the user's repository does not own those files, and git there would not see the write.
 */
async function assertNotInNestedRepo(root: string, rel: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    try {
      await lstat(join(dir, '.git'));
    } catch {
      continue;
    }
    throw new BoocoderError(
      'E_UNSAFE_CHANGE',
      `refusing ${describePath(rel)}: it lies inside a nested repository`,
    );
  }
}

/** The file's current bytes; null when absent. Anything but a regular file is a moved base. */
async function readCurrent(abs: string, rel: string): Promise<Buffer | null> {
  try {
    const st = await lstat(abs);
    if (!st.isFile()) {
      throw new BoocoderError(
        'E_BASE_MOVED',
        `${describePath(rel)} is no longer a regular file; nothing was written`,
      );
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  return readFile(abs);
}

function matches(current: Buffer | null, state: FileState | null): boolean {
  if (state === null) return current === null;
  return current !== null && blobOidOf(current, formatOf(state.oid)) === state.oid;
}

/** Writes through a temporary file in the same folder and a rename: no reader sees half a file. */
async function writeAtomically(abs: string, bytes: Buffer, mode: string): Promise<void> {
  const tmp = join(dirname(abs), `.boocoder-${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode === '100755' ? 0o777 : 0o666);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, abs);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Removes folders a deletion left empty, as git does, up to (never including) the root. */
async function removeEmptyParents(root: string, abs: string): Promise<void> {
  for (let dir = dirname(abs); dir !== root && dir.startsWith(`${root}/`); dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
  }
}

async function transition(
  repoRoot: string,
  change: FileChange,
  from: FileState | null,
  to: FileState | null,
): Promise<void> {
  const rel = assertSafeRepoPath(change.filePath);
  const root = await realpath(repoRoot);
  await assertNoSymlinkInPath(root, rel);
  await assertNotInNestedRepo(root, rel);
  const abs = join(root, rel);
  const current = await readCurrent(abs, rel);
  if (!matches(current, from)) {
    // Already in the target state: a retried call (the first one wrote, then its caller failed).
    if (matches(current, to)) return;
    throw new BoocoderError(
      'E_BASE_MOVED',
      `${describePath(rel)} changed since the agent's base (${from ? 'its content differs' : 'it now exists'}); nothing was written. Reject this change, or ask for it to be redone on the current file`,
    );
  }
  if (to === null) {
    await unlink(abs);
    await removeEmptyParents(root, abs);
    return;
  }
  if (current !== null && from !== null && from.oid === to.oid) {
    await chmod(abs, to.mode === '100755' ? 0o755 : 0o644); // a mode-only change
    return;
  }
  const bytes = await readBlob(root, to.oid);
  await mkdir(dirname(abs), { recursive: true });
  // The folders just created could have been swapped for symlinks in between: check again.
  await assertNoSymlinkInPath(root, rel);
  await writeAtomically(abs, bytes, to.mode);
}

/** Makes the user's file hold the change's result. Its current state must be the change's base. */
export async function applyFileChange(repoRoot: string, change: FileChange): Promise<void> {
  const { base, result } = statesOf(change);
  return transition(repoRoot, change, base, result);
}

/** Undoes an applied change. The file must still hold the change's result (or be absent after a delete). */
export async function revertFileChange(repoRoot: string, change: FileChange): Promise<void> {
  const { base, result } = statesOf(change);
  return transition(repoRoot, change, result, base);
}
