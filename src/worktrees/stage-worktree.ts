/**
 * Stages the whole state of a worktree (edits, deletions, new files; .gitignore honoured) into its
 * index with plumbing, in a fixed number of git calls whatever the number of files:
 * `status` to list candidates (planStaging), one `hash-object --no-filters -w --stdin-paths` (raw
 * bytes: no clean filter or eol conversion can run or alter them; a large capture writes its blobs
 * with fast-import instead, capture-pack.ts), one `update-index --index-info` (writeIndex).
 * `git add` is not used: even with every filter driver off, in-tree .gitattributes still apply
 * `text`/`eol`, `ident` and `working-tree-encoding` conversions to what it stores (the blob would not
 * be the agent's bytes), and it stages an agent-made nested repository as a submodule.
 * File names travel as bytes (Buffers) end to end, so a name that is not UTF-8 is staged exactly.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { BoocoderError } from '../errors.js';
import { assertOid, type RunGitOptions, runGit, runGitBuffer } from './git.js';
import { describePath, isGitFolderName } from './path-policy.js';

export interface SkippedPath {
  filePath: string;
  reason: string;
}

/** Splits a NUL-terminated listing into byte strings. */
export function splitNul(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = buf.indexOf(0, start); i !== -1; i = buf.indexOf(0, start)) {
    out.push(buf.subarray(start, i));
    start = i + 1;
  }
  return out;
}

/** C-style quoting as git's unquote_c_style reads it: lets any byte sequence be one stdin line. */
export function cQuote(path: Buffer): Buffer {
  const out: number[] = [0x22];
  for (const b of path) {
    if (b === 0x22 || b === 0x5c) out.push(0x5c, b);
    else if (b < 0x20 || b === 0x7f) {
      for (const c of `\\${b.toString(8).padStart(3, '0')}`) out.push(c.charCodeAt(0));
    } else out.push(b);
  }
  out.push(0x22);
  return Buffer.from(out);
}

interface Candidates {
  /** the commit HEAD pointed at when the worktree was listed */
  head: string;
  /** worktree, index and HEAD all hold the same files */
  clean: boolean;
  /** the index holds HEAD's tree exactly: nothing staged, nothing unmerged */
  indexMatchesHead: boolean;
  deleted: Buffer[];
  /** modified, type-changed or unmerged: whether each still exists is checked when staging */
  changed: Buffer[];
  untracked: Buffer[];
}

/** The path of a porcelain v2 record: what follows its `fields` space-separated fields. */
function pathAfterFields(record: Buffer, fields: number): Buffer {
  let at = 0;
  for (let i = 0; i < fields; i++) {
    at = record.indexOf(0x20, at) + 1;
    if (at === 0) throw new BoocoderError('E_GIT_FAILED', 'unexpected output from git status');
  }
  return record.subarray(at);
}

/**
 * Parses `git status --porcelain=v2 -z --branch --no-renames` output: the `# branch.oid` header,
 * `1 XY ...` records for tracked paths (Y is the worktree against the index), `u ...` for unmerged
 * ones and `? path` for untracked ones.
 */
export function parseStatus(buf: Buffer): Candidates {
  const out: Candidates = {
    head: '',
    clean: true,
    indexMatchesHead: true,
    deleted: [],
    changed: [],
    untracked: [],
  };
  for (const record of splitNul(buf)) {
    const kind = record.subarray(0, 2).toString('latin1');
    if (kind !== '# ') out.clean = false;
    if (record.subarray(0, 13).toString('latin1') === '# branch.oid ') {
      out.head = record.subarray(13).toString('latin1');
    } else if (kind === '1 ') {
      if (record[2] !== 0x2e) out.indexMatchesHead = false; // X: the index against HEAD
      const worktree = String.fromCharCode(record[3] ?? 0);
      if (worktree === 'D') out.deleted.push(pathAfterFields(record, 8));
      else if (worktree !== '.') out.changed.push(pathAfterFields(record, 8));
    } else if (kind === 'u ') {
      out.indexMatchesHead = false;
      out.changed.push(pathAfterFields(record, 10));
    } else if (kind === '? ') out.untracked.push(record.subarray(2));
    else if (kind !== '# ') throw new BoocoderError('E_GIT_FAILED', 'unexpected output from git status');
  }
  return out;
}

/**
 * Tracked files modified or deleted, untracked files not ignored, and HEAD, in one `status` call. It
 * also records fresh stat data for every file whose content it found unchanged (optional locks on:
 * it writes the index it refreshed), so it does what `ls-files` plus `update-index --refresh` did in
 * one pass over the files. `--ignore-submodules=dirty`: a submodule's own work tree is not looked
 * into, so no git runs inside one an agent planted; one deleted or moved to another commit is seen.
 */
async function listCandidates(opts: RunGitOptions): Promise<Candidates> {
  const r = await runGitBuffer(
    [
      'status',
      '--porcelain=v2',
      '-z',
      '--branch',
      '--no-ahead-behind',
      '--untracked-files=all',
      '--no-renames',
      '--ignore-submodules=dirty',
    ],
    { ...opts, optionalLocks: true },
  );
  const out = parseStatus(r.stdout);
  assertOid(out.head, 'HEAD of the session worktree');
  return out;
}

/** One path as it enters the index; `oid` is set once its blob is written. */
export interface Staged {
  mode: string;
  path: Buffer;
  oid?: string;
  symlinkTarget?: Buffer;
}

export interface StageLimits {
  /** more deleted plus new files than this: E_TOO_MANY_FILES before anything is hashed */
  maxNewFiles: number;
  /** a larger file: E_DIFF_TOO_LARGE before anything is hashed */
  maxFileBytes: number;
}

type Inspected = { staged: Staged } | { skipped: string } | { vanished: true };

/** How one listed path enters the index, if at all. */
function inspectPath(root: string, path: Buffer, maxFileBytes: number): Inspected {
  // git lists a folder with its own `.git` as `dir/`: staging it would make a submodule.
  if (path[path.length - 1] === 0x2f) return { skipped: 'a nested git repository is not captured' };
  // `update-index` drops such a path with only a warning, and fast-import would write it into a
  // tree: a tree entry `.GIT` is the repository folder itself once checked out on a case-insensitive
  // file system (CVE-2014-9390), where it could plant hooks or config.
  if (path.toString('utf8').split('/').some(isGitFolderName))
    return { skipped: 'a path through a folder named like `.git` is not captured' };
  const abs = Buffer.concat([Buffer.from(`${root}/`), path]);
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch {
    return { vanished: true }; // gone (or its folder turned into a file) since git listed it
  }
  if (st.isSymbolicLink()) {
    // Never read through the link (hash-object would): the blob of a symlink is its target text.
    return { staged: { mode: '120000', path, symlinkTarget: readlinkSync(abs, { encoding: 'buffer' }) } };
  }
  // A FIFO would block hash-object forever; sockets and devices have no content.
  if (!st.isFile()) return { skipped: 'not a regular file or symlink' };
  // A huge file would be copied into the user's object store before any other check could stop it.
  if (st.size > maxFileBytes) {
    throw new BoocoderError(
      'E_DIFF_TOO_LARGE',
      `the agent wrote ${describePath(path.toString('utf8'))}, ${st.size} bytes, over the ${maxFileBytes}-byte limit for one file; nothing was recorded`,
    );
  }
  return { staged: { mode: st.mode & 0o100 ? '100755' : '100644', path } };
}

/**
 * Paths looked at between two turns of the event loop. Synchronous lstat costs a quarter of the CPU
 * of the promise API (no thread-pool round trip per file) and is no slower; in batches, a capture
 * of thousands of files never holds up the server's other work for more than a few milliseconds.
 */
const INSPECT_BATCH = 256;

/**
 * Decides how each path enters the index; special files are skipped with a reason, and paths gone
 * since they were listed are returned as removals.
 */
async function inspect(
  root: string,
  paths: Buffer[],
  skipped: SkippedPath[],
  maxFileBytes: number,
): Promise<{ staged: Staged[]; vanished: Buffer[] }> {
  const staged: Staged[] = [];
  const vanished: Buffer[] = [];
  for (let i = 0; i < paths.length; i++) {
    if (i > 0 && i % INSPECT_BATCH === 0) await setImmediate();
    const path = paths[i] as Buffer;
    const r = inspectPath(root, path, maxFileBytes);
    if ('staged' in r) staged.push(r.staged);
    else if ('skipped' in r) skipped.push({ filePath: path.toString('utf8'), reason: r.skipped });
    else vanished.push(path);
  }
  return { staged, vanished };
}

/** Writes every blob as a loose object (`hash-object -w`) and records its oid. */
export async function hashFiles(opts: RunGitOptions, files: Staged[]): Promise<void> {
  const regular = files.filter((f) => f.symlinkTarget === undefined);
  if (regular.length > 0) {
    const input = Buffer.concat(regular.flatMap((f) => [cQuote(f.path), Buffer.from('\n')]));
    const r = await runGit(['hash-object', '-w', '--no-filters', '--stdin-paths'], { ...opts, input });
    const oids = r.stdout.trim().split('\n');
    if (oids.length !== regular.length) {
      throw new BoocoderError('E_GIT_FAILED', 'git hash-object returned an unexpected number of object ids');
    }
    regular.forEach((f, i) => {
      f.oid = oids[i];
    });
  }
  for (const f of files) {
    if (f.symlinkTarget === undefined) continue;
    const r = await runGit(['hash-object', '-w', '--no-filters', '--stdin'], {
      ...opts,
      input: f.symlinkTarget,
    });
    f.oid = r.stdout.trim();
  }
}

export interface StagePlan {
  /** the commit HEAD pointed at when the worktree was listed */
  head: string;
  /** nothing to stage nor anything staged already */
  clean: boolean;
  /** the index holds HEAD's tree exactly, so HEAD's tree plus `removals` and `staged` is the new tree */
  indexMatchesHead: boolean;
  /** paths to take out of the index: deleted, or gone since `status` listed them */
  removals: Buffer[];
  /** paths to (re)stage; regular files are read and hashed later, symlinks carry their target */
  staged: Staged[];
  skipped: SkippedPath[];
}

/**
 * Lists and inspects everything to stage, writing nothing but `status`'s refreshed stat data. The
 * limits bound the work before any hashing: untracked and deleted paths are certain changes, so
 * more of them than the limit is already too many.
 */
export async function planStaging(
  opts: RunGitOptions,
  root: string,
  limits: StageLimits,
): Promise<StagePlan> {
  const candidates = await listCandidates(opts);
  const certain = candidates.deleted.length + candidates.untracked.length;
  if (certain > limits.maxNewFiles) {
    throw new BoocoderError(
      'E_TOO_MANY_FILES',
      `the agent changed at least ${certain} files, over the limit of ${limits.maxNewFiles}; nothing was recorded. Ask for a smaller task, or add build output to .gitignore`,
    );
  }
  const skipped: SkippedPath[] = [];
  const { staged, vanished } = await inspect(
    join(root),
    [...candidates.changed, ...candidates.untracked],
    skipped,
    limits.maxFileBytes,
  );
  const { head, clean, indexMatchesHead } = candidates;
  return { head, clean, indexMatchesHead, removals: [...candidates.deleted, ...vanished], staged, skipped };
}

/**
 * Writes the staged blob oids and the removals into the index. The entries carry no stat data;
 * the next capture's `status` records it.
 */
export async function writeIndex(opts: RunGitOptions, plan: StagePlan): Promise<void> {
  const zeroOid = '0'.repeat(plan.head.length);
  // Removals first: a path that went from file to folder (`a` -> `a/b`) must leave before `a/b` arrives.
  const lines: Buffer[] = [];
  for (const path of plan.removals) lines.push(Buffer.from(`0 ${zeroOid}\t`), path, Buffer.from([0]));
  for (const f of plan.staged) lines.push(Buffer.from(`${f.mode} ${f.oid}\t`), f.path, Buffer.from([0]));
  if (lines.length > 0)
    await runGit(['update-index', '-z', '--index-info'], { ...opts, input: Buffer.concat(lines) });
}
