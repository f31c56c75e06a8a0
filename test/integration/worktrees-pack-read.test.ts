/**
 * In-process reading of blobs stored whole in pack files (pack-read.ts), against real packs made by
 * the system git: every blob it returns is the one git returns, whatever it cannot read (deltas,
 * large objects, damaged or planted files) is left to git, and wrong bytes never come out of
 * readBlobs.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readBlobs } from '../../src/worktrees/blob-batch.js';
import { DEFAULT_GIT_SEARCH_PATH, setGitSearchPath } from '../../src/worktrees/git.js';
import { PACKED_READ_MAX, readWholeStoredBlobs } from '../../src/worktrees/pack-read.js';
import { git, setupEnv, tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterEach(() => repos.cleanup());

const base = Array.from({ length: 200 }, (_, i) => `line ${i} of a file long enough to deltify\n`).join('');
const files: Record<string, string | Buffer> = {
  'empty.txt': '',
  'small.txt': 'hello\n',
  'binary.bin': Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)),
  'large.bin': Buffer.alloc(PACKED_READ_MAX + 1, 7),
  'similar-a.txt': base,
  'similar-b.txt': `${base}one more line\n`,
};

/** The repository's blobs, packed by git with `repackArgs`, and nothing left loose. */
async function packedRepo(...repackArgs: string[]): Promise<{ repo: string; oids: Map<string, string> }> {
  const repo = await repos.repo(files);
  git(repo, 'repack', '-a', '-d', '-q', ...repackArgs);
  git(repo, 'prune-packed');
  const oids = new Map(Object.keys(files).map((path) => [git(repo, 'rev-parse', `HEAD:${path}`), path]));
  return { repo, oids };
}

const catFile = (repo: string, oid: string) =>
  execFileSync('git', ['cat-file', 'blob', oid], { cwd: repo, env: setupEnv });

/** The ids git stored as deltas in the repository's packs (`git verify-pack -v`). */
function deltified(repo: string): string[] {
  const packDir = join(repo, '.git', 'objects', 'pack');
  const idx = readdirSync(packDir).filter((n) => n.endsWith('.idx'));
  return idx.flatMap((name) =>
    git(repo, 'verify-pack', '-v', join(packDir, name))
      .split('\n')
      .filter((line) => / blob +\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(line))
      .map((line) => line.split(' ')[0] as string),
  );
}

describe('reading blobs stored whole in a pack', () => {
  it('returns exactly the bytes git has for every whole-stored blob, and leaves large ones to git', async () => {
    const { repo, oids } = await packedRepo('--window=0');
    expect(deltified(repo)).toEqual([]);
    const got = readWholeStoredBlobs(repo, [...oids.keys()]);
    for (const [oid, path] of oids) {
      if (path === 'large.bin') expect(got.has(oid)).toBe(false);
      else expect(got.get(oid)?.equals(catFile(repo, oid)), path).toBe(true);
    }
  });

  it('needs no git for them: readBlobs answers with no git to be found', async () => {
    const { repo, oids } = await packedRepo('--window=0');
    const wanted = [...oids].filter(([, path]) => path !== 'large.bin').map(([oid]) => oid);
    const large = [...oids].find(([, path]) => path === 'large.bin')?.[0] as string;
    setGitSearchPath('/nonexistent');
    try {
      const got = await readBlobs(repo, wanted);
      expect([...got.keys()].sort()).toEqual([...wanted].sort());
      // The control: what only git can read now fails.
      await expect(readBlobs(repo, [large])).rejects.toThrow();
    } finally {
      setGitSearchPath(DEFAULT_GIT_SEARCH_PATH);
    }
  });

  it('leaves deltas to git, and readBlobs still returns every blob', async () => {
    const { repo, oids } = await packedRepo('-f', '--window=50', '--depth=50');
    const deltas = deltified(repo);
    expect(deltas.length).toBeGreaterThan(0);
    const whole = readWholeStoredBlobs(repo, [...oids.keys()]);
    for (const oid of deltas) expect(whole.has(oid)).toBe(false);
    const got = await readBlobs(repo, oids.keys());
    for (const oid of oids.keys()) expect(got.get(oid)?.equals(catFile(repo, oid))).toBe(true);
  });

  it('never returns damaged bytes: zlib refuses a flipped byte, the id check a swapped blob', async () => {
    const { repo, oids } = await packedRepo('--window=0');
    const oidOf = (path: string) => [...oids].find(([, p]) => p === path)?.[0] as string;
    const packDir = join(repo, '.git', 'objects', 'pack');
    const idxPath = join(packDir, readdirSync(packDir).find((n) => n.endsWith('.idx')) as string);
    const packPath = idxPath.replace(/\.idx$/, '.pack');
    const pristine = { idx: readFileSync(idxPath), pack: readFileSync(packPath) };
    const entry = (oid: string) => {
      const line = git(repo, 'verify-pack', '-v', idxPath)
        .split('\n')
        .find((l) => l.startsWith(oid)) as string;
      const [, , , stored, offset] = line.split(/ +/).map(Number);
      return { stored: stored as number, offset: offset as number };
    };
    // A byte flipped inside the deflated body (before its checksum).
    const binary = entry(oidOf('binary.bin'));
    const pack = Buffer.from(pristine.pack);
    const at = binary.offset + binary.stored - 8;
    pack[at] = (pack[at] as number) ^ 0xff;
    writeFileSync(packPath, pack);
    expect(readWholeStoredBlobs(repo, [oidOf('binary.bin')]).size).toBe(0);
    await expect(readBlobs(repo, [oidOf('binary.bin')])).rejects.toMatchObject({ code: 'E_GIT_FAILED' });
    // The index made to point small.txt's id at similar-a.txt's object: whole, valid, other bytes.
    writeFileSync(packPath, pristine.pack);
    const idx = Buffer.from(pristine.idx);
    const count = idx.readUInt32BE(8 + 255 * 4);
    const ids = 8 + 1024;
    const position = (oid: string) => {
      for (let i = 0; i < count; i++)
        if (idx.toString('hex', ids + i * 20, ids + i * 20 + 20) === oid) return i;
      throw new Error(`${oid} is not in the index`);
    };
    idx.writeUInt32BE(
      entry(oidOf('similar-a.txt')).offset,
      ids + count * 24 + position(oidOf('small.txt')) * 4,
    );
    writeFileSync(idxPath, idx);
    const swapped = readWholeStoredBlobs(repo, [oidOf('small.txt')]).get(oidOf('small.txt'));
    expect(swapped?.toString()).toBe(base);
    await expect(readBlobs(repo, [oidOf('small.txt')])).rejects.toMatchObject({ code: 'E_GIT_FAILED' });
  });

  it('ignores an index planted as a link to /dev/zero, and a repository whose .git is a file', async () => {
    const { repo, oids } = await packedRepo('--window=0');
    const packDir = join(repo, '.git', 'objects', 'pack');
    symlinkSync('/dev/zero', join(packDir, `pack-${'0'.repeat(40)}.idx`));
    const oid = [...oids.keys()][1] as string;
    expect(readWholeStoredBlobs(repo, [oid]).has(oid)).toBe(true);
    const linked = await repos.dir();
    writeFileSync(join(linked, '.git'), `gitdir: ${join(repo, '.git')}\n`);
    expect(readWholeStoredBlobs(linked, [oid]).size).toBe(0);
    unlinkSync(join(packDir, `pack-${'0'.repeat(40)}.idx`));
  });
});
