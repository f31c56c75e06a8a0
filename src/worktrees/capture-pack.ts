/**
 * The large-capture way to write a capture's objects: one `git fast-import` writes every blob, tree
 * and the commit into one pack, where `hash-object -w`, `write-tree` and `commit-tree` would create
 * one loose file per object (creating those files, ~0.1 ms of kernel time each, is most of what
 * they cost). Node reads each file itself and streams it as a blob of its raw bytes, exactly what
 * `hash-object --no-filters` stores; the commit is HEAD's tree with the removals and the staged
 * files applied, so it equals what write-tree makes of the index only when the index held HEAD's
 * tree: the caller checks that (StagePlan.indexMatchesHead). No ref is ever written: the commit is
 * made on a branch name that is reset to nothing before fast-import ends, and fast-import writes
 * only the branches it holds at the end. `get-mark` answers give the blob and commit oids.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { BoocoderError } from '../errors.js';
import { assertOid, buildGitEnv, type RunGitOptions, runGitBuffer } from './git.js';
import { describePath } from './path-policy.js';
import { cQuote, type Staged, type StagePlan } from './stage-worktree.js';

/**
 * Regular files to write before a capture takes the pack path. Every such capture adds one pack to
 * the user's repository (fast-import explodes fewer than fastimport.unpackLimit = 100 objects into
 * loose ones anyway), git searches packs one by one, and only the user's own `git gc --auto` (past
 * gc.autoPackLimit = 50 packs; it is off for boocoder's git) merges them. Below a few hundred files
 * the loose objects cost tens of milliseconds, so small captures, the common case, stay loose.
 */
export const PACK_THRESHOLD = 256;

/** Whether a capture with this plan writes its objects with fast-import. */
export function shouldWritePack(plan: StagePlan, threshold: number): boolean {
  if (!plan.indexMatchesHead) return false;
  let regular = 0;
  for (const f of plan.staged) if (f.symlinkTarget === undefined) regular++;
  return regular >= threshold;
}

/** Never written (see the module comment): fast-import only needs some branch to commit on. */
const SCRATCH_REF = 'refs/boocoder-tmp/capture';
/** Files read between two turns of the event loop, as stage-worktree's INSPECT_BATCH. */
const READ_BATCH = 64;
/** Stream commands are handed to git in pieces of about this size: fewer writes to the pipe. */
const CHUNK_BYTES = 256 * 1024;

type ReadResult = { data: Buffer; mode: string } | { vanished: true } | { skipped: string };

function tooLarge(path: Buffer, size: number, max: number): BoocoderError {
  return new BoocoderError(
    'E_DIFF_TOO_LARGE',
    `the agent wrote ${describePath(path.toString('utf8'))}, ${size} bytes, over the ${max}-byte limit for one file; nothing was recorded`,
  );
}

/** Reads to the end, but never more than `max` bytes: a file still growing cannot exhaust memory. */
function readAtMost(fd: number, expected: number, max: number, path: Buffer): Buffer {
  let buf = Buffer.allocUnsafe(Math.min(expected, max) + 1);
  let len = 0;
  for (;;) {
    if (len === buf.length) {
      if (len > max) throw tooLarge(path, len, max);
      const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, max + 1));
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    const n = readSync(fd, buf, len, buf.length - len, null);
    if (n === 0) return buf.subarray(0, len);
    len += n;
  }
}

/** One staged regular file's bytes, checked again now that it is opened (it may have changed). */
function readRegularFile(root: string, path: Buffer, maxFileBytes: number): ReadResult {
  let fd: number;
  try {
    // O_NOFOLLOW: a file swapped for a symlink since it was inspected is not read through (a link to
    // ~/.ssh/id_rsa would put that key into a blob and a diff). O_NONBLOCK: a FIFO swapped in
    // cannot block the open. Folders on the way are trusted as on the loose path.
    fd = openSync(
      Buffer.concat([Buffer.from(`${root}/`), path]),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { vanished: true };
    if (code === 'ELOOP') return { skipped: 'turned into a symlink while it was being captured' };
    throw new BoocoderError(
      'E_GIT_FAILED',
      `cannot read ${describePath(path.toString('utf8'))} in the session worktree (${code ?? 'error'}); nothing was recorded`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { skipped: 'not a regular file or symlink' };
    if (st.size > maxFileBytes) throw tooLarge(path, st.size, maxFileBytes);
    return { data: readAtMost(fd, st.size, maxFileBytes, path), mode: st.mode & 0o100 ? '100755' : '100644' };
  } finally {
    closeSync(fd);
  }
}

/** What the stream did with the plan: the blobs it wrote (in mark order) and what changed since. */
interface StreamState {
  written: Staged[];
  lateRemovals: Buffer[];
  lateSkipped: StagePlan['skipped'];
  failure?: unknown;
}

/** `<seconds> <+hhmm>` in the local zone, as commit-tree would date the commit. */
function rawDate(now: Date): string {
  const offset = -now.getTimezoneOffset();
  const abs = Math.abs(offset);
  const zone = `${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  return `${Math.floor(now.getTime() / 1000)} ${zone}`;
}

/**
 * The commit: HEAD's tree, removals first (a file that became a folder must leave before its new
 * children arrive), then every written blob at its path.
 */
function commitCommands(plan: StagePlan, message: string, state: StreamState): Buffer[] {
  const env = buildGitEnv();
  const who = `${env.GIT_COMMITTER_NAME} <${env.GIT_COMMITTER_EMAIL}> ${rawDate(new Date())}`;
  const text = Buffer.from(`${message || 'boocoder'}\n`);
  const mark = state.written.length + 1;
  const out: Buffer[] = [
    Buffer.from(
      `commit ${SCRATCH_REF}\nmark :${mark}\nauthor ${who}\ncommitter ${who}\ndata ${text.length}\n`,
    ),
    text,
    Buffer.from(`from ${plan.head}\n`),
  ];
  const nl = Buffer.from('\n');
  // Every path is C-quoted: a file name holding a newline could otherwise inject stream commands.
  for (const path of [...plan.removals, ...state.lateRemovals]) out.push(Buffer.from('D '), cQuote(path), nl);
  state.written.forEach((f, i) => {
    out.push(Buffer.from(`M ${f.mode} :${i + 1} `), cQuote(f.path), nl);
  });
  out.push(Buffer.from(`\nget-mark :${mark}\nreset ${SCRATCH_REF}\n\n`));
  return out;
}

/**
 * The fast-import stream. A failure while reading (a file grown past the limit) ends the stream
 * cleanly with `done` and no commit: killed, fast-import would leave a temporary pack behind, while
 * this way the blobs already sent are unreferenced objects, as after a failed loose capture, for
 * `git gc` to prune. The failure is recorded in `state` and thrown once git has exited.
 */
async function* importStream(
  root: string,
  plan: StagePlan,
  message: string,
  maxFileBytes: number,
  state: StreamState,
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for (let i = 0; i < plan.staged.length; i++) {
      if (i > 0 && i % READ_BATCH === 0) await setImmediate();
      const f = plan.staged[i] as Staged;
      const read: ReadResult =
        f.symlinkTarget === undefined
          ? readRegularFile(root, f.path, maxFileBytes)
          : { data: f.symlinkTarget, mode: f.mode };
      if ('vanished' in read) state.lateRemovals.push(f.path);
      if ('skipped' in read)
        state.lateSkipped.push({ filePath: f.path.toString('utf8'), reason: read.skipped });
      if (!('data' in read)) continue;
      state.written.push({ mode: read.mode, path: f.path });
      const mark = state.written.length;
      pending.push(Buffer.from(`blob\nmark :${mark}\ndata ${read.data.length}\n`), read.data);
      pending.push(Buffer.from(`\nget-mark :${mark}\n`));
      pendingBytes += read.data.length + 64;
      if (pendingBytes >= CHUNK_BYTES) {
        yield Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
      }
    }
    pending.push(...commitCommands(plan, message, state));
  } catch (err) {
    state.failure = err;
  }
  pending.push(Buffer.from('done\n'));
  yield Buffer.concat(pending);
}

/**
 * Writes the plan's blobs, trees and commit (parent: the plan's head) with one fast-import and
 * returns the commit and the plan as written: staged entries with their oids, and paths that
 * vanished or turned into something else while being read moved to removals or skipped.
 */
export async function writeCapturePack(
  opts: RunGitOptions,
  plan: StagePlan,
  message: string,
  maxFileBytes: number,
): Promise<{ commit: string; plan: StagePlan }> {
  const state: StreamState = { written: [], lateRemovals: [], lateSkipped: [] };
  const input = importStream(join(opts.cwd), plan, message, maxFileBytes, state);
  // --done: a stream cut short is an error, never a commit of half the files. No --import-marks or
  // other option naming a file: fast-import reads nothing but this stream and the object store.
  // Objects are stored as the loose path stores them, whole and at zlib level 1 (core.looseCompression's
  // default): deltas against whatever blob came before cost CPU here, and every later read of the
  // blob (diff, apply, status) would pay to undo a chain of them. `git gc` deltifies the pack later.
  const args = ['fast-import', '--quiet', '--done', '--date-format=raw', '--depth=0'];
  const extraConfig = [...(opts.extraConfig ?? []), ['pack.compression', '1'] as const];
  const r = await runGitBuffer(args, { ...opts, extraConfig, input });
  if (state.failure !== undefined) throw state.failure;
  const oids = r.stdout.toString('latin1').split('\n');
  if (oids.pop() !== '' || oids.length !== state.written.length + 1)
    throw new BoocoderError('E_GIT_FAILED', 'git fast-import returned an unexpected number of object ids');
  const written = state.written.map((f, i) => ({ ...f, oid: assertOid(oids[i] as string, 'a blob id') }));
  const commit = assertOid(oids[written.length] as string, 'the capture commit id');
  return {
    commit,
    plan: {
      ...plan,
      removals: [...plan.removals, ...state.lateRemovals],
      staged: written,
      skipped: [...plan.skipped, ...state.lateSkipped],
    },
  };
}
