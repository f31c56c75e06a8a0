/**
 * Attack: a captured change (or a forged row) whose path or mode makes apply/revert write outside
 * the repository, into its `.git`, through a symlink, or create a symlink/submodule. Each attempt
 * must be refused with E_PATH_ESCAPE / E_UNSAFE_CHANGE and leave the repository and the outside
 * world byte-for-byte unchanged.
 */
import { mkdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { applyFileChange, revertFileChange } from '../../src/worktrees/apply-batch.js';
import type { FileChange } from '../../src/worktrees/apply-guards.js';
import { blobOidOf } from '../../src/worktrees/blob-batch.js';
import { git, snapshot, tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
let repo: string;
let outside: string;
let payloadOid: string;
const payload = Buffer.from('#!/bin/sh\ntouch /tmp/pwned\n');

beforeAll(async () => {
  repo = await repos.repo({ 'README.md': '# r\n', 'src/app.js': 'x\n' });
  outside = await repos.dir();
  await writeFile(join(outside, 'victim.txt'), 'victim\n');
  // The payload blob exists in the object store, as an agent's capture would have put it there.
  await writeFile(join(repo, 'payload.tmp'), payload);
  payloadOid = git(repo, 'hash-object', '-w', 'payload.tmp');
  git(repo, 'rm', '-q', '--cached', '--ignore-unmatch', 'payload.tmp');
  await unlink(join(repo, 'payload.tmp'));
  // Planted escape hatches inside the repository.
  await symlink(outside, join(repo, 'linkdir'));
  await symlink(join(outside, 'victim.txt'), join(repo, 'linkfile.txt'));
  await mkdir(join(repo, 'nested'));
  git(join(repo, 'nested'), 'init', '-q');
});
afterAll(() => repos.cleanup());

const create = (filePath: string, mode = '100644'): FileChange => ({
  filePath,
  operation: 'create',
  baseOid: null,
  resultOid: payloadOid,
  baseMode: null,
  resultMode: mode,
});

async function expectRefused(action: () => Promise<void>, codes: string[]): Promise<void> {
  const beforeRepo = await snapshot(repo);
  const gitConfig = await readFile(join(repo, '.git', 'config'));
  await expect(action()).rejects.toSatisfy((e: unknown) => isBoocoderError(e) && codes.includes(e.code));
  expect(await snapshot(repo)).toEqual(beforeRepo);
  expect((await readFile(join(repo, '.git', 'config'))).equals(gitConfig)).toBe(true);
  expect(await readFile(join(outside, 'victim.txt'), 'utf8')).toBe('victim\n');
  expect(Object.keys(Object.fromEntries(await snapshot(outside)))).toEqual(['victim.txt']);
}

describe('apply refuses paths that escape the repository', () => {
  it.each([
    ['../x', 'parent climb'],
    ['src/../../x', 'climb through a real folder'],
    ['/tmp/absolute', 'absolute path'],
    ['.git/config', '.git/config'],
    ['.GIT/config', '.GIT/config in another case'],
    ['.git/hooks/pre-commit', 'a hook'],
    ['src/.Git/hooks/post-checkout', 'nested .Git'],
    ['.gitmodules', '.gitmodules'],
    ['a\\..\\..\\x', 'backslashes'],
    ['x\u0000y', 'NUL'],
  ])('%j (%s)', async (filePath) => {
    await expectRefused(() => applyFileChange(repo, create(filePath)), ['E_PATH_ESCAPE']);
  });

  it('through a symlinked folder', async () => {
    await expectRefused(() => applyFileChange(repo, create('linkdir/victim2.txt')), ['E_PATH_ESCAPE']);
  });

  it('through a symlink leaf (edit and delete)', async () => {
    const victimOid = blobOidOf(Buffer.from('victim\n'));
    const edit: FileChange = {
      filePath: 'linkfile.txt',
      operation: 'edit',
      baseOid: victimOid,
      resultOid: payloadOid,
      baseMode: '100644',
      resultMode: '100644',
    };
    await expectRefused(() => applyFileChange(repo, edit), ['E_PATH_ESCAPE']);
    const del: FileChange = { ...edit, operation: 'delete', resultOid: null, resultMode: null };
    await expectRefused(() => applyFileChange(repo, del), ['E_PATH_ESCAPE']);
    await expectRefused(
      () =>
        revertFileChange(repo, {
          ...edit,
          operation: 'create',
          baseOid: null,
          baseMode: null,
          resultOid: victimOid,
        }),
      ['E_PATH_ESCAPE'],
    );
  });

  it('into a nested repository', async () => {
    await expectRefused(() => applyFileChange(repo, create('nested/file.txt')), ['E_UNSAFE_CHANGE']);
  });

  it('that would create a symlink or a submodule', async () => {
    await expectRefused(() => applyFileChange(repo, create('evil-link', '120000')), ['E_UNSAFE_CHANGE']);
    await expectRefused(() => applyFileChange(repo, create('evil-sub', '160000')), ['E_UNSAFE_CHANGE']);
    await expectRefused(() => revertFileChange(repo, create('evil-link', '120000')), ['E_UNSAFE_CHANGE']);
  });

  it('with forged object ids (option injection into git)', async () => {
    await expectRefused(
      () => applyFileChange(repo, { ...create('ok.txt'), resultOid: '--output=/tmp/x' }),
      ['E_INVALID_INPUT'],
    );
  });
});
