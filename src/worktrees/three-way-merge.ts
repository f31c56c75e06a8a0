/**
 * The merge apply performs when the user's file moved since the agent's base: base (what the agent
 * started from), the agent's result and the file as it is now, through `git merge-file` on three
 * files in a private temp folder outside the repository (git here is 2.39; `merge-file
 * --object-id`, which reads blobs from the object store, needs 2.43). merge-file reads no
 * attributes and no repository, and runs through git.ts like every other git, with the same
 * environment: no user or system config, nothing inherited.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoocoderError } from '../errors.js';
import type { FileState } from './apply-guards.js';
import { readBlob } from './blob-batch.js';
import { runGit, runGitBuffer } from './git.js';
import { describePath } from './path-policy.js';

/** merge-file's exit code is its number of conflicts (capped at 127); other codes are failures. */
const CONFLICT_EXIT_CODES = Array.from({ length: 127 }, (_, i) => i + 1);
/** How much of the conflicting hunks an error shows (the model reads it; the rest is elided). */
const MAX_HUNKS_CHARS = 8 * 1024;

export type MergeOutcome =
  | { clean: true; merged: Buffer }
  | { clean: false; conflicts: number; hunks: string };

/** The conflicting regions of merge-file's output, markers included, with a line of context. */
export function conflictHunks(merged: string): string {
  const lines = merged.split('\n');
  const out: string[] = [];
  let inside = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('<<<<<<< ')) {
      if (i > 0) out.push(`@@ line ${i} @@`, lines[i - 1] as string);
      else out.push('@@ line 1 @@');
      inside = true;
    }
    if (inside) out.push(line);
    if (inside && line.startsWith('>>>>>>> ')) inside = false;
  }
  const text = out.join('\n');
  return text.length > MAX_HUNKS_CHARS
    ? `${text.slice(0, MAX_HUNKS_CHARS)}\n… (more conflicts elided)`
    : text;
}

/**
 * Merges the agent's change (base -> result) into `current`. A binary file (NUL bytes) is not
 * merged: a line merge would corrupt it. `rel` only names the file in messages.
 */
export async function mergeThreeWay(
  rel: string,
  base: Buffer,
  current: Buffer,
  result: Buffer,
): Promise<MergeOutcome> {
  if ([base, current, result].some((b) => b.includes(0))) {
    throw new BoocoderError(
      'E_BASE_MOVED',
      `${describePath(rel)} changed since the agent's base and is binary, so it cannot be merged; nothing was written. Reject this change, or ask for it to be redone on the current file`,
    );
  }
  // A private folder (0700): another local user cannot swap these files between write and read.
  const dir = await mkdtemp(join(tmpdir(), 'boocoder-merge-'));
  try {
    const [cur, bas, res] = ['current', 'base', 'agent'].map((n) => join(dir, n)) as [string, string, string];
    await Promise.all([writeFile(cur, current), writeFile(bas, base), writeFile(res, result)]);
    const r = await runGitBuffer(
      [
        'merge-file',
        '-p',
        '--diff3',
        '-L',
        'current file',
        '-L',
        "agent's base",
        '-L',
        "agent's change",
        cur,
        bas,
        res,
      ],
      {
        cwd: dir,
        okExitCodes: CONFLICT_EXIT_CODES,
        maxBuffer: base.length + current.length + result.length + 65_536,
      },
    );
    if (r.exitCode === 0) return { clean: true, merged: r.stdout };
    return { clean: false, conflicts: r.exitCode, hunks: conflictHunks(r.stdout.toString('utf8')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The file moved since the agent's base: an edit is merged (below) and the merge is
 * what gets written; a conflict refuses the whole batch (E_MERGE_CONFLICT, hunks shown), as does
 * any other move (E_BASE_MOVED). A revert never merges: the file must hold what apply wrote.
 */
export async function mergeOrRefuse(
  root: string,
  step: { rel: string; from: FileState | null; to: FileState | null; current: Buffer | null },
  direction: 'apply' | 'revert',
): Promise<Buffer> {
  const { rel, from, to, current } = step;
  if (direction === 'revert') {
    throw new BoocoderError(
      'E_BASE_MOVED',
      `${describePath(rel)} changed since the change was applied (${current ? 'its content differs' : 'it is gone'}); nothing was written. Revert the file by hand, or keep it`,
    );
  }
  if (from === null || to === null || current === null) {
    throw new BoocoderError(
      'E_BASE_MOVED',
      `${describePath(rel)} changed since the agent's base (${from ? 'it is gone' : 'it now exists'}); nothing was written. Reject this change, or ask for it to be redone on the current file`,
    );
  }
  const [base, result] = await Promise.all([readBlob(root, from.oid), readBlob(root, to.oid)]);
  const outcome = await mergeThreeWay(rel, base, current, result);
  if (!outcome.clean) {
    throw new BoocoderError(
      'E_MERGE_CONFLICT',
      `${describePath(rel)} changed since the agent's base and merging the change into it conflicts (${outcome.conflicts} conflict(s)); nothing was written. Conflicting hunks (current file | agent's base | agent's change):\n${outcome.hunks}\nResolve by hand, reject the change, or use request_changes to have the agent redo it on the current file`,
      { conflicts: outcome.conflicts },
    );
  }
  return outcome.merged;
}

/**
 * Stores `bytes` as a blob in the repository's object store (no filters run: the bytes are kept as
 * they are), so what a file held before a merging apply can be put back by revert.
 */
export async function storeBlob(repoRoot: string, bytes: Buffer): Promise<string> {
  const r = await runGit(['hash-object', '-w', '--no-filters', '--stdin'], { cwd: repoRoot, input: bytes });
  return r.stdout.trim();
}
