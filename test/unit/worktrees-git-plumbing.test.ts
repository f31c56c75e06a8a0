import { describe, expect, it } from 'vitest';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
import { parseRawDiff } from '../../src/worktrees/capture-diff.js';
import {
  assertOid,
  buildGitEnv,
  encodeConfigParameters,
  filterNeutralisers,
  redactGitMessage,
  sqQuote,
} from '../../src/worktrees/git.js';
import { oversizeDiffPlaceholder, PatchSplitter } from '../../src/worktrees/patch-split.js';
import { cQuote, splitNul } from '../../src/worktrees/stage-worktree.js';

describe('git environment', () => {
  it('is built from scratch: no GIT_DIR, HOME or inherited variables unless asked', () => {
    const env = buildGitEnv();
    expect(env.GIT_DIR).toBeUndefined();
    expect(env.GIT_WORK_TREE).toBeUndefined();
    expect(env.HOME).toBeUndefined();
    expect(env.GIT_ASKPASS).toBeUndefined();
    expect(env.GIT_CONFIG_GLOBAL).toBe('/dev/null');
    expect(env.GIT_CONFIG_NOSYSTEM).toBe('1');
    expect(env.GIT_TERMINAL_PROMPT).toBe('0');
    expect(env.GIT_NO_REPLACE_OBJECTS).toBe('1');
    expect(env.GIT_AUTHOR_EMAIL).toBe('boocoder@localhost');
    expect(env.GIT_CONFIG_PARAMETERS).toContain(`'core.hooksPath'='/dev/null'`);
    expect(env.GIT_CONFIG_PARAMETERS).toContain(`'core.fsmonitor'='false'`);
    expect(buildGitEnv({ gitDir: '/g', workTree: '/w' })).toMatchObject({
      GIT_DIR: '/g',
      GIT_WORK_TREE: '/w',
    });
  });

  it('quotes config keys and values the way git dequotes them', () => {
    expect(sqQuote(`it's`)).toBe(`'it'\\''s'`);
    expect(sqQuote('a!b')).toBe(`'a'\\!'b'`);
    expect(encodeConfigParameters([['filter.x=y.clean', '']])).toBe(`'filter.x=y.clean'=''`);
  });

  it('neutralises every command of a filter driver', () => {
    expect(filterNeutralisers(['lfs'])).toEqual([
      ['filter.lfs.clean', ''],
      ['filter.lfs.smudge', ''],
      ['filter.lfs.process', ''],
      ['filter.lfs.required', 'false'],
    ]);
  });

  it('keeps host paths out of error messages', () => {
    const msg = redactGitMessage("fatal: cannot lock ref '/home/alice/repo/.git/x': /opt/secret exists", [
      ['/home/alice/repo', '<repo>'],
    ]);
    expect(msg).toBe("fatal: cannot lock ref '<repo>/.git/x': <path> exists");
  });

  it('accepts only full object ids as revisions (no option injection)', () => {
    expect(assertOid('a'.repeat(40), 'x')).toBe('a'.repeat(40));
    for (const bad of ['--output=/tmp/x', 'HEAD', 'a'.repeat(39), `${'a'.repeat(40)} `, 'A'.repeat(40)]) {
      expect(() => assertOid(bad, 'x')).toThrow(/object id/);
    }
  });
});

describe('blobOidOf', () => {
  it('matches git hash-object', () => {
    // `printf 'hello\n' | git hash-object --stdin` and the empty blob
    expect(blobOidOf(Buffer.from('hello\n'))).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
    expect(blobOidOf(Buffer.alloc(0))).toBe('e69de29bb2d1d6434b8b29ae775ad8c2e48c5391');
  });
});

describe('stdin and -z encodings', () => {
  it('C-quotes any byte sequence', () => {
    expect(cQuote(Buffer.from('a"b\\c\nd\re')).toString()).toBe('"a\\"b\\\\c\\012d\\015e"');
    expect(
      cQuote(Buffer.from('日本')).equals(
        Buffer.concat([Buffer.from('"'), Buffer.from('日本'), Buffer.from('"')]),
      ),
    ).toBe(true);
  });

  it('splits NUL-terminated listings', () => {
    expect(splitNul(Buffer.from('a\0b c\0')).map(String)).toEqual(['a', 'b c']);
    expect(splitNul(Buffer.alloc(0))).toEqual([]);
  });

  it('parses raw diff-tree output with any file name', () => {
    const oid1 = '1'.repeat(40);
    const zero = '0'.repeat(40);
    const raw = Buffer.from(
      `:000000 100644 ${zero} ${oid1} A\0new\nline\0:100644 000000 ${oid1} ${zero} D\0gone\0`,
    );
    expect(parseRawDiff(raw)).toEqual([
      {
        baseMode: '000000',
        resultMode: '100644',
        baseOid: zero,
        resultOid: oid1,
        status: 'A',
        filePath: 'new\nline',
      },
      {
        baseMode: '100644',
        resultMode: '000000',
        baseOid: oid1,
        resultOid: zero,
        status: 'D',
        filePath: 'gone',
      },
    ]);
    expect(() => parseRawDiff(Buffer.from('garbage\0x\0'))).toThrow();
  });
});

describe('PatchSplitter', () => {
  const patch = [
    'diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-diff --git fake\n+x\n',
    'diff --git a/b b/b\nBinary files a/b and b/b differ\n',
    'diff --git a/c b/c\n+no newline at end',
  ];
  const whole = Buffer.from(patch.join(''));

  it('splits at file headers only, whatever the chunking', () => {
    for (const size of [1, 2, 5, 11, 12, 64, whole.length]) {
      const s = new PatchSplitter(1000);
      for (let i = 0; i < whole.length; i += size) s.push(whole.subarray(i, i + size));
      const segments = s.finish();
      expect(segments.map((x) => x.bytes.toString())).toEqual(patch);
      expect(segments.map((x) => x.totalBytes)).toEqual(patch.map((p) => Buffer.byteLength(p)));
    }
  });

  it('stores nothing past the limit but counts the real size', () => {
    const s = new PatchSplitter(20);
    s.push(whole);
    const [a, b] = s.finish();
    expect(a?.totalBytes).toBe(Buffer.byteLength(patch[0] as string));
    expect(a?.bytes.length).toBe(0);
    expect(b?.totalBytes).toBe(Buffer.byteLength(patch[1] as string));
    expect(oversizeDiffPlaceholder('a', 99, 20)).toContain('99 bytes, over the 20-byte limit');
  });
});
