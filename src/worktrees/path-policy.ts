/**
 * Policy for a repository-relative path that came from an agent or a client, before anything is
 * written to the user's repository. `checkRepoPath` is pure (strings only) so it can be tested
 * against thousands of adversarial inputs; `assertNoSymlinkInPath` is the I/O half.
 */
import { lstat, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { BoocoderError } from '../errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

/**
 * Code points HFS+ ignores when comparing names: `.g\u200cit` is the same folder as `.git` there,
 * so a check that only compares strings would let a write reach `.git/config` on a Mac.
 */
const HFS_IGNORABLE = /[\u200b-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/**
 * The name as Windows and macOS file systems would resolve it: ignorable code points dropped,
 * trailing dots and spaces dropped (NTFS), and case folded (NTFS and APFS are case-insensitive).
 */
function fileSystemSpelling(segment: string): string {
  return segment
    .replace(HFS_IGNORABLE, '')
    .replace(/[. ]+$/, '')
    .toLowerCase();
}

/**
 * Whether some file system resolves this name to the `.git` folder: `.GIT` on a case-insensitive
 * one, `.git.` on NTFS, `.g\u200cit` on HFS+, and `git~1`, the NTFS 8.3 short name of `.git`.
 */
export function isGitFolderName(segment: string): boolean {
  const folded = fileSystemSpelling(segment);
  return folded === '.git' || folded === 'git~1';
}

/** Segment names that reach git's own data: the repository directory and the submodule map. */
function isGitControlled(segment: string): string | undefined {
  if (isGitFolderName(segment)) {
    return segment.toLowerCase().startsWith('git~')
      ? '`git~1` is the Windows short name of `.git`'
      : 'a `.git` folder holds the repository itself (hooks, config)';
  }
  if (fileSystemSpelling(segment) === '.gitmodules')
    return '`.gitmodules` makes git fetch and check out other repositories';
  return undefined;
}

export type PathCheck = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Checks a repository-relative path and returns it normalised (`./a//b` -> `a/b`). Never touches
 * the file system.
 */
export function checkRepoPath(input: string): PathCheck {
  if (typeof input !== 'string' || input.length === 0) return { ok: false, reason: 'the path is empty' };
  if (Buffer.byteLength(input, 'utf8') > MAX_PATH_BYTES) {
    return { ok: false, reason: `the path is longer than ${MAX_PATH_BYTES} bytes` };
  }
  // NUL truncates paths in C code; newlines and other controls forge lines in diffs and logs.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(input))
    return { ok: false, reason: 'the path contains control characters' };
  if (input.includes('\ufffd')) return { ok: false, reason: 'the path is not valid UTF-8' };
  // A backslash is a separator on Windows: `..\\x` would climb out there.
  if (input.includes('\\')) return { ok: false, reason: 'the path contains a backslash' };
  if (input.startsWith('/')) return { ok: false, reason: 'the path is absolute' };
  if (input.endsWith('/')) return { ok: false, reason: 'the path names a folder, not a file' };
  const segments: string[] = [];
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: 'the path climbs out of the repository with `..`' };
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      return { ok: false, reason: `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes` };
    }
    const gitReason = isGitControlled(segment);
    if (gitReason) return { ok: false, reason: gitReason };
    segments.push(segment);
  }
  if (segments.length === 0) return { ok: false, reason: 'the path names the repository root' };
  const path = segments.join('/');
  // `C:x` is drive-relative on Windows. Checked on the normalised path, since `./C:x` becomes `C:x`.
  if (/^[A-Za-z]:/.test(path)) return { ok: false, reason: 'the path starts with a drive letter' };
  return { ok: true, path };
}

/** `checkRepoPath` that throws E_PATH_ESCAPE: for code paths that must stop on a bad path. */
export function assertSafeRepoPath(input: string): string {
  const r = checkRepoPath(input);
  if (!r.ok)
    throw new BoocoderError('E_PATH_ESCAPE', `refusing the path ${describePath(input)}: ${r.reason}`);
  return r.path;
}

/** A short, printable rendering of an untrusted path for messages. */
export function describePath(input: string): string {
  const printable = JSON.stringify(String(input));
  return printable.length > 200 ? `${printable.slice(0, 200)}…"` : printable;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Refuses to write through a symlink. A symlinked folder (`src -> /etc`) or a symlinked file
 * (`notes.txt -> ~/.ssh/authorized_keys`) planted in the repository would turn a write of
 * `src/passwd` or `notes.txt` into a write outside it. Each existing component is lstat'ed; the
 * deepest existing folder must also resolve (realpath) inside the root. `rootPath` must already be
 * a realpath. Missing trailing components are fine: the caller creates them.
 */
export async function assertNoSymlinkInPath(rootPath: string, relPath: string): Promise<void> {
  const safe = assertSafeRepoPath(relPath);
  const parts = safe.split('/');
  let current = rootPath;
  let deepestDir = rootPath;
  for (let i = 0; i < parts.length; i++) {
    current = join(current, parts[i] as string);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(current);
    } catch (err) {
      if (isMissing(err)) break;
      throw err;
    }
    if (st.isSymbolicLink()) {
      throw new BoocoderError(
        'E_PATH_ESCAPE',
        `refusing the path ${describePath(safe)}: ${i === parts.length - 1 ? 'the file' : 'a folder on the way'} is a symlink`,
      );
    }
    if (i < parts.length - 1) {
      if (!st.isDirectory()) break; // the write will fail with ENOTDIR; nothing escapes
      deepestDir = current;
    }
  }
  const resolved = await realpath(deepestDir);
  if (resolved !== rootPath && !resolved.startsWith(rootPath + sep)) {
    throw new BoocoderError(
      'E_PATH_ESCAPE',
      `refusing the path ${describePath(safe)}: it resolves outside the repository`,
    );
  }
}
