/**
 * The one diff of a capture: `sinceCommit` against the new tree with `--no-renames --raw -p`, read
 * as a stream, so each path is one raw record (modes, object ids) and then one patch.
 */
import { BoocoderError } from '../errors.js';
import { type RunGitOptions, streamGit } from './git.js';
import { type PatchSegment, RawAndPatchSplitter } from './patch-split.js';
import { splitNul } from './stage-worktree.js';

export interface RawEntry {
  baseMode: string;
  resultMode: string;
  baseOid: string;
  resultOid: string;
  status: string;
  filePath: string;
}

/** Parses `diff-index`/`diff-tree -r -z --raw` records: `:mode mode oid oid STATUS\0path\0` per file. */
export function parseRawDiff(buf: Buffer): RawEntry[] {
  const fields = splitNul(buf);
  const out: RawEntry[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const meta = (fields[i] as Buffer).toString('latin1');
    const m = /^:(\d{6}) (\d{6}) ([0-9a-f]+) ([0-9a-f]+) ([A-Z])\d*$/.exec(meta);
    if (!m) throw new BoocoderError('E_GIT_FAILED', 'unexpected output from git diff');
    out.push({
      baseMode: m[1] as string,
      resultMode: m[2] as string,
      baseOid: m[3] as string,
      resultOid: m[4] as string,
      status: m[5] as string,
      filePath: (fields[i + 1] as Buffer).toString('utf8'),
    });
  }
  return out;
}

const DIFF_FLAGS = [
  '-r',
  '--no-renames',
  '--no-ext-diff',
  '--no-textconv',
  '-O/dev/null',
  '--ignore-submodules=none',
];

export interface StagedDiff {
  entries: RawEntry[];
  segments: PatchSegment[];
}

/**
 * `since` against the new tree (`diff-index --cached since`: the staged index; `diff-tree since
 * commit`): every file's raw record, then its patch. Aborts past `maxFiles` files.
 */
export async function diffStaged(
  opts: RunGitOptions,
  command: readonly string[],
  revs: readonly string[],
  limits: { maxFiles: number; maxDiffBytes: number; maxTotalDiffBytes: number },
): Promise<StagedDiff> {
  const splitter = new RawAndPatchSplitter(limits.maxFiles, limits.maxDiffBytes, limits.maxTotalDiffBytes);
  await streamGit(
    [
      ...command,
      '-z',
      '--raw',
      '-p',
      '--no-color',
      '--src-prefix=a/',
      '--dst-prefix=b/',
      ...DIFF_FLAGS,
      ...revs,
    ],
    opts,
    (chunk) => splitter.push(chunk),
  );
  const { raw, segments } = splitter.finish();
  return { entries: parseRawDiff(raw), segments };
}
