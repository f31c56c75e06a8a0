/**
 * A unified diff between two blobs of one path, for a change whose base is not the capture's (a
 * follow-up's change recorded against the rejected change's base: see services/review.ts). The
 * blobs are written to a private temp folder outside the repository and compared with `git diff
 * --no-index` there: no repository, attributes, drivers or textconv take part.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readBlobs } from './blob-batch.js';
import { runGitBuffer } from './git.js';
import { oversizeDiffPlaceholder } from './patch-split.js';
import { assertSafeRepoPath } from './path-policy.js';

export async function diffBlobs(
  repoRoot: string,
  filePath: string,
  baseOid: string | null,
  resultOid: string | null,
  maxDiffBytes: number,
): Promise<{ diff: string; diffBytes: number }> {
  const rel = assertSafeRepoPath(filePath);
  const blobs = await readBlobs(
    repoRoot,
    [baseOid, resultOid].filter((o): o is string => o !== null),
  );
  const dir = await mkdtemp(join(tmpdir(), 'boocoder-diff-'));
  try {
    const side = async (prefix: 'a' | 'b', oid: string | null) => {
      if (oid === null) return '/dev/null';
      const path = join(prefix, rel);
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), blobs.get(oid) as Buffer);
      return path;
    };
    const [a, b] = await Promise.all([side('a', baseOid), side('b', resultOid)]);
    const r = await runGitBuffer(
      [
        'diff',
        '--no-index',
        '--no-color',
        '--no-ext-diff',
        '--no-textconv',
        '--binary',
        '--no-prefix',
        '--',
        a,
        b,
      ],
      { cwd: dir, okExitCodes: [1] },
    );
    const diffBytes = r.stdout.length;
    if (diffBytes > maxDiffBytes)
      return { diff: oversizeDiffPlaceholder(rel, diffBytes, maxDiffBytes), diffBytes };
    return { diff: r.stdout.toString('utf8'), diffBytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
