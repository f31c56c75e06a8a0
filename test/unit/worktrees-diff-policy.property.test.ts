/**
 * Properties of the diff side of the worktrees module, on generated input: splitting a multi-file
 * `git diff-tree -p` stream into per-file patches loses and moves no byte; a path that would escape
 * the repository or reach its `.git` is refused with E_PATH_ESCAPE wherever it comes from; a change
 * of any mode but a regular file's is refused with E_UNSAFE_CHANGE, and nothing is written.
 * Capture -> apply -> revert round trips on generated agent work are in
 * test/integration/worktrees-diff-roundtrip.property.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChange, revertFileChange } from '../../src/worktrees/apply-batch.js';
import type { FileChange } from '../../src/worktrees/apply-guards.js';
import { parseRawDiff } from '../../src/worktrees/capture-diff.js';
import { PatchSplitter } from '../../src/worktrees/patch-split.js';
import { assertSafeRepoPath, checkRepoPath } from '../../src/worktrees/path-policy.js';
import { git, setupEnv, snapshot, tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

async function rejectsWith(action: Promise<unknown>, code: string): Promise<void> {
  await expect(action).rejects.toSatisfy((e: unknown) => isBoocoderError(e) && e.code === code);
}

/** The change record of a file an agent created. */
function creation(filePath: string, resultOid: string, resultMode = '100644'): FileChange {
  return { filePath, operation: 'create', baseOid: null, resultOid, baseMode: null, resultMode };
}

const segment = fc.stringMatching(/^[A-Za-z0-9_é名][A-Za-z0-9 ._é名-]{0,7}$/);
const safePath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));

const NL = Buffer.from('\n');
/** Lines of real patches that mention a file header without being one, and other header lines. */
const TRICKY_LINES = [
  '+diff --git a/fake b/fake',
  '-diff --git x',
  'index 0000000..1111111 100644',
  '--- a/x',
  '+++ b/x',
  'new file mode 100755',
  'Binary files a/x and b/x differ',
  '\\ No newline at end of file',
];

describe('PatchSplitter on generated diff streams', () => {
  // Every line a per-file patch can hold after its header; none starts a new file. Bytes are
  // arbitrary (CR, invalid UTF-8) except the newline that ends the line.
  const lineBody = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b.filter((x) => x !== 10)));
  const patchLine = fc.oneof(
    fc
      .tuple(fc.constantFrom(' ', '+', '-', '@', '\\'), lineBody)
      .map(([p, b]) => Buffer.concat([Buffer.from(p), b])),
    fc.constantFrom(...TRICKY_LINES),
  );
  const filePatch = fc
    .tuple(safePath, fc.array(patchLine, { maxLength: 8 }))
    .map(([path, lines]) =>
      Buffer.concat([`diff --git a/${path} b/${path}`, ...lines].flatMap((l) => [Buffer.from(l), NL])),
    );
  const stream = fc
    .tuple(fc.array(filePatch, { minLength: 1, maxLength: 6 }), fc.boolean())
    .map(([patches, cutLastNewline]): Buffer[] =>
      patches.map((p, i) => (cutLastNewline && i === patches.length - 1 ? p.subarray(0, -1) : p)),
    );

  it('splits at file headers only, whatever the chunking: re-joined, the parts are the stream', () => {
    fc.assert(
      fc.property(
        stream,
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        (patches, sizes) => {
          const whole = Buffer.concat(patches);
          const splitter = new PatchSplitter(1 << 20);
          for (let i = 0, n = 0; i < whole.length; n++) {
            const size = sizes[n % sizes.length] as number;
            splitter.push(whole.subarray(i, i + size));
            i += size;
          }
          const segments = splitter.finish();
          expect(segments.map((s) => s.bytes.toString('latin1'))).toEqual(
            patches.map((p) => p.toString('latin1')),
          );
          expect(Buffer.concat(segments.map((s) => s.bytes)).equals(whole)).toBe(true);
          expect(segments.map((s) => s.totalBytes)).toEqual(patches.map((p) => p.length));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stores a part whole or not at all, and always counts its real size', () => {
    fc.assert(
      fc.property(stream, fc.integer({ min: 0, max: 200 }), (patches, limit) => {
        const splitter = new PatchSplitter(limit);
        splitter.push(Buffer.concat(patches));
        const segments = splitter.finish();
        expect(segments).toHaveLength(patches.length);
        segments.forEach((s, i) => {
          const patch = patches[i] as Buffer;
          expect(s.totalBytes).toBe(patch.length);
          expect(s.bytes.equals(patch.length <= limit ? patch : Buffer.alloc(0))).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Paths an agent's change could carry to escape the repository or reach `.git`. Absolute ones
 * point into `sandbox` and climbs stay within three levels, so even a broken guard in the apply
 * property below would write only where the test looks.
 */
function hostilePath(sandbox: string): fc.Arbitrary<string> {
  const prefix = fc.array(segment, { maxLength: 2 });
  const dotGit = fc
    .tuple(
      fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
      fc.constantFrom('', '.', ' ', '. .', '\u200c'),
    )
    .map(([upper, decoration]) => {
      const name = ['g', 'i', 't'].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
      return decoration === '\u200c' ? `.${name.slice(0, 1)}\u200c${name.slice(1)}` : `.${name}${decoration}`;
    });
  const control = fc
    .oneof(fc.integer({ min: 0, max: 0x1f }), fc.constant(0x7f))
    .map((c) => String.fromCharCode(c));
  return fc.oneof(
    safePath.map((p) => `${sandbox}/${p}`),
    fc
      .tuple(prefix, fc.integer({ min: 1, max: 3 }), safePath)
      .map(([a, n, b]) => [...a, ...Array(n).fill('..'), b].join('/')),
    fc
      .tuple(prefix, fc.oneof(dotGit, fc.constantFrom('git~1', 'GIT~1', '.gitmodules')), safePath)
      .map(([a, g, b]) => [...a, g, b].join('/')),
    fc.tuple(safePath, control, fc.nat()).map(([p, c, at]) => {
      const i = at % (p.length + 1);
      return `${p.slice(0, i)}${c}${p.slice(i)}`;
    }),
    fc.tuple(safePath, safePath).map(([a, b]) => `${a}\\..\\${b}`),
    safePath.map((p) => `C:${p}`),
  );
}

/** One `diff-tree -r -z` raw record: a file created at `path`. */
function rawRecord(path: string, oid: string): Buffer {
  return Buffer.from(`:000000 100644 ${'0'.repeat(40)} ${oid} A\0${path}\0`);
}

describe('hostile paths in a change', () => {
  it('survive the raw diff record unaltered, and the policy refuses them with E_PATH_ESCAPE', () => {
    fc.assert(
      fc.property(hostilePath('/sandbox'), (path) => {
        expect(checkRepoPath(path).ok).toBe(false);
        expect(() => assertSafeRepoPath(path)).toThrow(expect.objectContaining({ code: 'E_PATH_ESCAPE' }));
        // A NUL ends the name in `-z` output: git can never print such a path.
        if (!path.includes('\0'))
          expect(parseRawDiff(rawRecord(path, '1'.repeat(40)))[0]?.filePath).toBe(path);
      }),
      { numRuns: 1000 },
    );
  });

  describe('on a real repository', () => {
    let sandbox: string;
    let repo: string;
    let blob: string;

    beforeAll(async () => {
      sandbox = await repos.dir();
      repo = join(sandbox, 'a', 'b', 'repo');
      await mkdir(repo, { recursive: true });
      git(repo, 'init', '-q', '-b', 'main');
      const hashObject = ['hash-object', '-w', '--stdin'];
      blob = execFileSync('git', hashObject, { cwd: repo, env: setupEnv, input: 'payload\n' })
        .toString()
        .trim();
    });

    it('apply and revert refuse them and write nothing, inside the repository or out', async () => {
      const before = await snapshot(sandbox);
      await fc.assert(
        fc.asyncProperty(hostilePath(sandbox), async (filePath) => {
          const change = creation(filePath, blob);
          await rejectsWith(applyFileChange(repo, change), 'E_PATH_ESCAPE');
          await rejectsWith(revertFileChange(repo, change), 'E_PATH_ESCAPE');
          expect(await snapshot(sandbox)).toEqual(before);
        }),
        { numRuns: 60 },
      );
    });

    it('apply accepts only a regular file or an executable one, whatever mode a change record carries', async () => {
      const mode = fc.oneof(
        fc.constantFrom('100644', '100755', '120000', '160000', '040000', '100664', '000000'),
        fc.stringMatching(/^[0-7]{6}$/),
        fc.string({ maxLength: 8 }),
      );
      let n = 0;
      await fc.assert(
        fc.asyncProperty(mode, async (resultMode) => {
          const filePath = `mode-${n++}.txt`;
          const change = creation(filePath, blob, resultMode);
          if (resultMode !== '100644' && resultMode !== '100755') {
            await rejectsWith(applyFileChange(repo, change), 'E_UNSAFE_CHANGE');
            await expect(lstat(join(repo, filePath))).rejects.toThrow();
            return;
          }
          await applyFileChange(repo, change);
          const st = await stat(join(repo, filePath));
          expect(st.isFile()).toBe(true);
          expect(Boolean(st.mode & 0o100)).toBe(resultMode === '100755');
          await revertFileChange(repo, change);
          await expect(lstat(join(repo, filePath))).rejects.toThrow();
        }),
        { numRuns: 40 },
      );
    });
  });
});
