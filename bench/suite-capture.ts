/**
 * Metric 5 of issue 5: change capture and apply, against plain git on identical trees.
 *
 * A 20,000-file repository; each round touches 1,000 files (900 edits, 50 deletions, 50 new
 * files) in boocoder's session worktree and, identically, in a plain worktree of the same
 * repository. boocoder: captureChanges (src/worktrees/capture.ts), which stages, commits and splits
 * per-file diffs. Peer: `git add -A && git diff --cached` with the output read whole.
 *
 * Apply: 100 of the captured changes (a mix of edits, creates and deletes) written into the user's
 * checkout, compared with `git apply` of the same diffs into a second checkout, like for like:
 * one applyFileChange per change (apply_change with change_id) vs one `git apply` per patch, and
 * one applyFileChanges of all 100 (apply_change with change_ids) vs one `git apply` of all 100.
 * The two checkouts are compared byte for byte after each kind of apply in the first round.
 */
import { readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyFileChange, applyFileChanges, revertFileChanges } from '../src/worktrees/apply-batch.js';
import { type CapturedChange, captureChanges } from '../src/worktrees/capture.js';
import { ensureSessionWorktree } from '../src/worktrees/worktrees.js';
import { type BenchContext, type Suite, size } from './context.js';
import { git, makeRepo, runCommand, tempDir, writeFiles } from './git-repo.js';
import type { Metric } from './report.js';
import { median, now, progress, timed } from './stats.js';

const FILES = 20_000;
const PER_DIR = 100;
const TOUCHED = 1000;

function pathOf(i: number): string {
  const dir = String(Math.floor(i / PER_DIR)).padStart(3, '0');
  return `src/d${dir}/f${String(i % PER_DIR).padStart(3, '0')}.txt`;
}

function contentOf(i: number): string {
  let text = '';
  for (let line = 0; line < 20; line++) text += `file ${i} line ${line}: the quick brown fox jumps\n`;
  return text;
}

function* repoFiles(): Generator<readonly [string, string]> {
  for (let i = 0; i < FILES; i++) yield [pathOf(i), contentOf(i)];
}

/** Round `round`'s 1,000 touches, spread over the whole tree and disjoint from other rounds'. */
async function touch(root: string, round: number): Promise<void> {
  for (let j = 0; j < TOUCHED - 50; j++) {
    const i = j * 20 + round;
    const path = join(root, pathOf(i));
    if (j % 19 === 0) await unlink(path);
    else await writeFile(path, `${contentOf(i).replace('line 3:', `line 3 (round ${round}):`)}appended\n`);
  }
  await writeFiles(
    root,
    Array.from(
      { length: 50 },
      (_, j) => [`new/r${round}/n${j}.txt`, `new file ${j} of round ${round}\n`] as const,
    ),
  );
}

async function sameBytes(a: string, b: string, rel: string): Promise<boolean> {
  const read = (root: string) => readFile(join(root, rel)).catch(() => null);
  const [x, y] = await Promise.all([read(a), read(b)]);
  return x === null || y === null ? x === y : x.equals(y);
}

interface Trees {
  repo: string;
  session: string;
  peer: string;
  applyPeer: string;
  initial: string;
  cleanup(): Promise<void>;
}

async function buildTrees(): Promise<Trees> {
  const repo = await makeRepo('capture', repoFiles());
  // Packed, as a cloned or long-used repository is: fresh from makeRepo its 20,000 blobs are loose
  // objects, and every object lookup would be a file system call no real repository of this size pays.
  await git(repo, 'gc', '-q');
  const initial = await git(repo, 'rev-parse', 'HEAD');
  const worktreesRoot = await tempDir('capture-wt');
  const session = (await ensureSessionWorktree({ repoPath: repo, worktreesRoot, sessionId: 'bench' })).path;
  const peer = join(worktreesRoot, 'peer');
  const applyPeer = join(worktreesRoot, 'apply-peer');
  // A copy with its own object store: in a worktree of the same repository, whichever side ran
  // second would find the other's 1,000 new blobs already written and skip that work.
  await runCommand('cp', ['-a', repo, peer], worktreesRoot);
  // Untimed: a copied index holds stale stat data (new inodes and ctimes), so the peer's first
  // `git add -A` would re-read all 20,000 files; boocoder's worktree index is fresh from checkout.
  await git(peer, 'update-index', '-q', '--refresh');
  await git(repo, 'worktree', 'add', '-q', '--detach', applyPeer, initial);
  return {
    repo,
    session,
    peer,
    applyPeer,
    initial,
    async cleanup() {
      await rm(worktreesRoot, { recursive: true, force: true });
      await rm(repo, { recursive: true, force: true });
    },
  };
}

async function measureCapture(t: Trees, rounds: number) {
  const ours: number[] = [];
  const peer: number[] = [];
  let since = t.initial;
  let firstRound: CapturedChange[] = [];
  for (let round = 0; round < rounds; round++) {
    await touch(t.session, round);
    await touch(t.peer, round);
    // Untimed: flush the 2,000 files just written, so neither side pays the other's writeback.
    await runCommand('sync', [], t.repo);
    const runOurs = async () => {
      const r = await timed(() =>
        captureChanges({
          repoPath: t.repo,
          worktreePath: t.session,
          sinceCommit: since,
          message: `bench round ${round}`,
          limits: { maxFiles: 5000, maxDiffBytes: 1024 * 1024 },
        }),
      );
      if (r.result.changes.length !== TOUCHED)
        throw new Error(`capture found ${r.result.changes.length} changes, expected ${TOUCHED}`);
      since = r.result.commit;
      if (round === 0) firstRound = r.result.changes;
      ours.push(r.ms);
    };
    const runPeer = async () => {
      const r = await timed(() => runCommand('sh', ['-c', 'git add -A && git diff --cached'], t.peer));
      if (r.result.stdout.length === 0) throw new Error('git diff --cached printed nothing');
      peer.push(r.ms);
      await git(t.peer, 'commit', '-q', '-m', `round ${round}`); // untimed: the next round diffs from here
    };
    // Alternate who goes first: neither always runs on the cache the other warmed.
    for (const step of round % 2 === 0 ? [runOurs, runPeer] : [runPeer, runOurs]) await step();
  }
  return { ours, peer, changes: firstRound };
}

async function sameTrees(t: Trees, changes: CapturedChange[], what: string): Promise<void> {
  for (const c of changes) {
    if (!(await sameBytes(t.repo, t.applyPeer, c.filePath)))
      throw new Error(`boocoder (${what}) and git apply disagree on ${c.filePath}`);
  }
}

async function measureApply(t: Trees, changes: CapturedChange[], rounds: number) {
  const perCall: number[] = [];
  const perPatch: number[] = [];
  const ours: number[] = [];
  const batch: number[] = [];
  const all = changes.map((c) => c.diff).join('');
  // Untimed between the timed steps: both checkouts back to the base.
  const reset = async () => {
    await revertFileChanges(t.repo, changes);
    await runCommand('git', ['apply', '-R'], t.applyPeer, all);
  };
  for (let round = 0; round < rounds; round++) {
    let t0 = now();
    for (const c of changes) await applyFileChange(t.repo, c);
    perCall.push(now() - t0);
    t0 = now();
    for (const c of changes) await runCommand('git', ['apply'], t.applyPeer, c.diff);
    perPatch.push(now() - t0);
    if (round === 0) await sameTrees(t, changes, 'one call per change');
    await reset();
    ours.push((await timed(() => applyFileChanges(t.repo, changes))).ms);
    batch.push((await timed(() => runCommand('git', ['apply'], t.applyPeer, all))).ms);
    if (round === 0) await sameTrees(t, changes, 'one batch');
    await reset();
  }
  return { perCall, perPatch, ours, batch };
}

export const changeCaptureSuite: Suite = {
  name: 'capture',
  description: '1,000 touched files in a 20,000-file repo: capture vs git add+diff; apply 100 vs git apply',
  async run(ctx: BenchContext) {
    const rounds = size(ctx, 5, 2);
    progress(`capture: building a ${FILES}-file repository and three checkouts of it`);
    const t = await buildTrees();
    try {
      progress(`capture: ${rounds} rounds of ${TOUCHED} touched files`);
      const capture = await measureCapture(t, rounds);
      const picked = capture.changes.filter((_, i) => i % 10 === 0);
      const kinds: Record<string, number> = {};
      for (const c of picked) kinds[c.operation] = (kinds[c.operation] ?? 0) + 1;
      progress(`capture: applying ${picked.length} changes (${JSON.stringify(kinds)}), ${rounds} rounds`);
      const apply = await measureApply(t, picked, rounds);
      const metric = (
        id: string,
        label: string,
        ours: number[],
        peer: number[],
        peerName: string,
        max: number,
      ): Metric => ({
        id,
        label,
        unit: 'ms',
        boocoder: median(ours),
        peer: median(peer),
        peerName,
        target: { kind: 'ratio-max', value: max },
        detail: { rounds, boocoderMs: ours, peerMs: peer, ...(id.startsWith('apply') ? { kinds } : {}) },
      });
      return [
        metric(
          'capture.1000-of-20000',
          `change capture, ${TOUCHED} of ${FILES} files (median)`,
          capture.ours,
          capture.peer,
          'git add -A && git diff --cached',
          1.5,
        ),
        metric(
          'apply.100.per-patch',
          `apply ${picked.length} changes (median)`,
          apply.perCall,
          apply.perPatch,
          `git apply ×${picked.length}`,
          2,
        ),
        metric(
          'apply.100.batch',
          `apply ${picked.length} changes in one batch (median)`,
          apply.ours,
          apply.batch,
          'one git apply',
          2,
        ),
      ];
    } finally {
      await t.cleanup();
    }
  },
};
