/**
 * Stages the whole state of a worktree (edits, deletions, new files; .gitignore honoured) into its
 * index with plumbing, in a fixed number of git calls whatever the number of files:
 * `ls-files` to list candidates, one `hash-object --no-filters -w --stdin-paths` (raw bytes: no
 * clean filter or eol conversion can run or alter them), one `update-index --index-info`.
 * `git add` is not used: it runs clean filters and would follow an agent-made nested repository.
 * File names travel as bytes (Buffers) end to end, so a name that is not UTF-8 is staged exactly.
 */
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BoocoderError } from '../errors.js';
import { type RunGitOptions, runGit, runGitBuffer } from './git.js';

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
  deleted: Buffer[];
  changed: Buffer[];
  untracked: Buffer[];
}

/** Tracked files modified or deleted, and untracked files not ignored, in one `ls-files` call. */
async function listCandidates(opts: RunGitOptions): Promise<Candidates> {
  const r = await runGitBuffer(
    ['ls-files', '-z', '-t', '--modified', '--deleted', '--others', '--exclude-standard'],
    opts,
  );
  const deletedKeys = new Set<string>();
  const out: Candidates = { deleted: [], changed: [], untracked: [] };
  const changed: Buffer[] = [];
  for (const record of splitNul(r.stdout)) {
    const tag = String.fromCharCode(record[0] ?? 0);
    const path = record.subarray(2);
    if (tag === 'R') {
      out.deleted.push(path);
      deletedKeys.add(path.toString('latin1'));
    } else if (tag === 'C') changed.push(path);
    else if (tag === '?') out.untracked.push(path);
  }
  // `--modified` lists deleted files too: they are removals, not edits.
  out.changed = changed.filter((p) => !deletedKeys.has(p.toString('latin1')));
  return out;
}

interface Staged {
  mode: string;
  path: Buffer;
  oid?: string;
  symlinkTarget?: Buffer;
}

/** Decides how each existing path enters the index; special files are skipped with a reason. */
async function inspect(root: string, paths: Buffer[], skipped: SkippedPath[]): Promise<Staged[]> {
  const staged: Staged[] = [];
  for (const path of paths) {
    const display = path.toString('utf8');
    if (path[path.length - 1] === 0x2f) {
      // ls-files shows a folder with its own `.git` as `dir/`: staging it would make a submodule.
      skipped.push({ filePath: display, reason: 'a nested git repository is not captured' });
      continue;
    }
    const abs = Buffer.concat([Buffer.from(`${root}/`), path]);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(abs);
    } catch {
      continue; // vanished since ls-files: nothing to stage
    }
    if (st.isSymbolicLink()) {
      // Never read through the link (hash-object would): the blob of a symlink is its target text.
      staged.push({ mode: '120000', path, symlinkTarget: await readlink(abs, { encoding: 'buffer' }) });
    } else if (st.isFile()) {
      staged.push({ mode: st.mode & 0o100 ? '100755' : '100644', path });
    } else {
      // A FIFO would block hash-object forever; sockets and devices have no content.
      skipped.push({ filePath: display, reason: 'not a regular file or symlink' });
    }
  }
  return staged;
}

async function hashFiles(opts: RunGitOptions, files: Staged[]): Promise<void> {
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

/**
 * Makes the index match the worktree. `maxNewFiles` bounds the work before any hashing: untracked
 * and deleted paths are certain changes, so more of them than the limit is already too many.
 */
export async function stageWorktree(
  opts: RunGitOptions,
  root: string,
  zeroOid: string,
  maxNewFiles: number,
): Promise<{ skipped: SkippedPath[] }> {
  const candidates = await listCandidates(opts);
  const certain = candidates.deleted.length + candidates.untracked.length;
  if (certain > maxNewFiles) {
    throw new BoocoderError(
      'E_TOO_MANY_FILES',
      `the agent changed at least ${certain} files, over the limit of ${maxNewFiles}; ask for a smaller task or add build output to .gitignore`,
    );
  }
  const skipped: SkippedPath[] = [];
  const staged = await inspect(join(root), [...candidates.changed, ...candidates.untracked], skipped);
  await hashFiles(opts, staged);
  // Removals first: a path that went from file to folder (`a` -> `a/b`) must leave before `a/b` arrives.
  const lines: Buffer[] = [];
  for (const path of candidates.deleted) lines.push(Buffer.from(`0 ${zeroOid}\t`), path, Buffer.from([0]));
  for (const f of staged) lines.push(Buffer.from(`${f.mode} ${f.oid}\t`), f.path, Buffer.from([0]));
  if (lines.length > 0)
    await runGit(['update-index', '-z', '--index-info'], { ...opts, input: Buffer.concat(lines) });
  // Refreshing stat data keeps the next capture's `ls-files` from re-reading every file it staged.
  await runGit(['update-index', '-q', '--refresh'], { ...opts, okExitCodes: [1] });
  return { skipped };
}
