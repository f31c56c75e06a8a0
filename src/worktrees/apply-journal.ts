/**
 * Temp files of a batch write, findable after a crash. Every file of a batch is written through a
 * temp file next to it whose name is a function of the file's path (`tempNameOf`), and before the
 * first one is created the batch's paths are written to a journal in boocoder's home, one per
 * repository. A `kill -9` in the middle of a batch therefore leaves a journal that names every temp
 * file it may have left in the user's repository; the next batch on that repository (the retry)
 * and the next start-up (`sweepApplyJournals`) remove them. Without this, a crash left untracked
 * `.boocoder-*.tmp` files that the user's next `git add -A` committed.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assertNoSymlinkInPath } from './path-policy.js';

const hex = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** The temp file a batch writes `rel` through: in the same folder (so the rename is atomic). */
export function tempNameOf(rel: string): string {
  return `.boocoder-${hex(rel, 16)}.tmp`;
}

export function tempPathOf(rel: string): string {
  const dir = dirname(rel);
  return dir === '.' ? tempNameOf(rel) : `${dir}/${tempNameOf(rel)}`;
}

interface Journal {
  root: string;
  paths: string[];
}

const journalFileOf = (dir: string, root: string) => join(dir, `${hex(root, 32)}.json`);

/**
 * Removes the temp files a journal names, then the journal. Each is removed only if it is a regular
 * file reached through no symlink: a folder swapped for a symlink since the crash would otherwise
 * turn the sweep into a delete outside the repository.
 */
async function sweepJournalFile(file: string): Promise<number> {
  let journal: Journal;
  try {
    journal = JSON.parse(await readFile(file, 'utf8')) as Journal;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    // Half written (the crash came while it was written): no temp file was created yet.
    await unlink(file).catch(() => {});
    return 0;
  }
  let removed = 0;
  for (const rel of Array.isArray(journal.paths) ? journal.paths : []) {
    const tmp = tempPathOf(String(rel));
    try {
      await assertNoSymlinkInPath(journal.root, tmp);
      const abs = join(journal.root, tmp);
      if (!(await lstat(abs)).isFile() || basename(abs) !== tempNameOf(String(rel))) continue;
      await unlink(abs);
      removed += 1;
    } catch {
      // Absent (the usual case), or not safe to touch: nothing to do.
    }
  }
  await unlink(file).catch(() => {});
  return removed;
}

/**
 * Records the paths a batch is about to write under `root`, after sweeping what an earlier,
 * interrupted batch on the same repository left. Returns a function that removes the journal once
 * the batch is over (written or rolled back: either way its temp files are gone).
 */
export async function openApplyJournal(
  dir: string,
  root: string,
  paths: readonly string[],
): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = journalFileOf(dir, root);
  await sweepJournalFile(file);
  // Written to a side file, synced, then renamed: the journal is whole before any temp file exists.
  const side = `${file}.${process.pid}.new`;
  const handle = await open(side, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify({ root, paths: [...paths] } satisfies Journal));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(side, file);
  return () => unlink(file).catch(() => {});
}

/** Start-up: sweeps every journal a crashed process left. Returns how many temp files it removed. */
export async function sweepApplyJournals(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (name.endsWith('.json')) removed += await sweepJournalFile(join(dir, name));
    else if (name.endsWith('.new')) await unlink(join(dir, name)).catch(() => {});
  }
  return removed;
}
