import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { assertSafeRepoPath, checkRepoPath, MAX_PATH_BYTES } from '../../src/worktrees/path-policy.js';

const rejected: Array<[string, string]> = [
  ['', 'empty'],
  ['.', 'the root itself'],
  ['./', 'a folder'],
  ['a/', 'a folder'],
  ['/etc/passwd', 'absolute'],
  ['//server/share/x', 'absolute (UNC-like)'],
  ['../x', 'parent climb'],
  ['a/../../x', 'climb in the middle'],
  ['a/..', 'climb at the end'],
  ['a/b/../../..', 'deep climb'],
  ['..', 'bare climb'],
  ['..\\x', 'Windows climb'],
  ['a\\b', 'backslash'],
  ['C:x', 'drive-relative'],
  ['c:/x', 'drive letter'],
  ['a\u0000b', 'NUL'],
  ['a\nb', 'newline'],
  ['a\rb', 'carriage return'],
  ['a\tb', 'tab'],
  ['a\u007fb', 'DEL'],
  ['a\u001bb', 'escape'],
  ['bad\ufffdname', 'not UTF-8'],
  ['.git', '.git'],
  ['.git/config', '.git/config'],
  ['.GIT/config', 'upper-case .GIT'],
  ['.Git/hooks/pre-commit', 'mixed-case .Git'],
  ['sub/.git/config', 'nested .git'],
  ['sub/.gIt', 'nested .gIt leaf'],
  ['.git./config', 'NTFS trailing dot'],
  ['.git /config', 'NTFS trailing space'],
  ['.git.. . /config', 'NTFS trailing dots and spaces'],
  ['git~1/config', 'NTFS 8.3 short name'],
  ['GIT~1/config', 'NTFS 8.3 short name upper case'],
  ['.g\u200cit/config', 'HFS+ ignorable zero-width non-joiner'],
  ['\u200b.git/config', 'HFS+ ignorable zero-width space'],
  ['.gi\ufefft/config', 'HFS+ ignorable BOM'],
  ['.gitmodules', '.gitmodules'],
  ['.GITMODULES', 'upper-case .gitmodules'],
  ['sub/.gitmodules', 'nested .gitmodules'],
  ['.gitmodules.', 'NTFS .gitmodules.'],
  [`${'a'.repeat(256)}/x`, 'over-long segment'],
  [`${'abcdefgh/'.repeat(600)}x`, 'over-long path'],
];

describe('checkRepoPath rejects', () => {
  it.each(rejected)('%j (%s)', (input) => {
    expect(checkRepoPath(input).ok).toBe(false);
    try {
      assertSafeRepoPath(input);
      expect.unreachable();
    } catch (err) {
      expect(isBoocoderError(err, 'E_PATH_ESCAPE')).toBe(true);
    }
  });
});

describe('checkRepoPath accepts and normalises', () => {
  it.each([
    ['src/index.ts', 'src/index.ts'],
    ['./src//index.ts', 'src/index.ts'],
    ['a/./b', 'a/b'],
    ['.gitignore', '.gitignore'],
    ['.gitattributes', '.gitattributes'],
    ['.github/workflows/ci.yml', '.github/workflows/ci.yml'],
    ['foo.git/x', 'foo.git/x'],
    ['.git-blame-ignore-revs', '.git-blame-ignore-revs'],
    ['git/x', 'git/x'],
    ['..foo/x', '..foo/x'],
    ['a/...', 'a/...'],
    ['名前/ファイル.txt', '名前/ファイル.txt'],
    ['-rf', '-rf'],
  ])('%j -> %j', (input, expected) => {
    expect(checkRepoPath(input)).toEqual({ ok: true, path: expected });
  });

  it('accepts a path of exactly the byte limit', () => {
    const path = `${'abcdefgh/'.repeat(Math.floor((MAX_PATH_BYTES - 1) / 9))}x`.padEnd(MAX_PATH_BYTES, 'y');
    expect(Buffer.byteLength(path)).toBe(MAX_PATH_BYTES);
    expect(checkRepoPath(path).ok).toBe(true);
  });
});

const segmentChars = fc.constantFrom(
  ...'abcXYZ.-_/~ \\:\u0000\n\u200c\ufeffGgIiTt',
  '..',
  '.git',
  '.GIT',
  'git~1',
  '/..',
  '../',
);

describe('checkRepoPath properties', () => {
  const root = resolve('/srv/repo');
  const hasGitSegment = (p: string) =>
    p
      .split('/')
      .some((s) => ['.git', '.gitmodules', 'git~1'].includes(s.toLowerCase().replace(/[. ]+$/, '')));

  it('whatever passes, joined to a root, stays inside it and names no .git segment', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 60 }),
          fc.array(segmentChars, { maxLength: 20 }).map((a) => a.join('')),
        ),
        (input) => {
          const r = checkRepoPath(input);
          if (!r.ok) return;
          const joined = join(root, r.path);
          const rel = relative(root, joined);
          expect(joined.startsWith(root + sep)).toBe(true);
          expect(rel.startsWith('..') && (rel === '..' || rel.startsWith(`..${sep}`))).toBe(false);
          expect(isAbsolute(rel)).toBe(false);
          expect(hasGitSegment(r.path)).toBe(false);
          expect(r.path).toBe(join(r.path)); // already normal: joining changes nothing
          expect(checkRepoPath(r.path)).toEqual(r); // normalising is idempotent
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('checkRepoPath regressions', () => {
  it('refuses a drive letter that appears only after normalising (./C:x)', () => {
    expect(checkRepoPath('./C:x')).toMatchObject({ ok: false });
    expect(checkRepoPath('./a:')).toMatchObject({ ok: false });
  });
});
