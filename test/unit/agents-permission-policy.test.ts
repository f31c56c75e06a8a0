/**
 * The default permission policy: the pure judge on strings (each refusal named by the attack it
 * blocks), then the file-system half against real symlinks in temp folders.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PermissionOption, ToolCallUpdate, ToolKind } from '@agentclientprotocol/sdk/unstable';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import {
  judgeToolCall,
  MAX_LOCATIONS,
  type ResolvedLocation,
  rejectPermission,
} from '../../src/permissions/policy.js';
import {
  judgePermissionRequest,
  PermissionResponder,
  resolveLocationPath,
} from '../../src/permissions/responder.js';

const WT = '/srv/boocoder/worktrees/s1';
/** A location whose real path is its own text (no symlinks on the way). */
const at = (path: string): ResolvedLocation => ({ path, resolved: path });

describe('judgeToolCall (pure)', () => {
  it.each<ToolKind>(['read', 'edit', 'delete', 'move', 'search', 'execute', 'think'])(
    'allows a %s tool call whose locations are all inside the worktree',
    (kind) => {
      const verdict = judgeToolCall(kind, [at(`${WT}/src/a.ts`), at(`${WT}/README.md`)], WT);
      expect(verdict.allow).toBe(true);
    },
  );

  it.each<ToolKind | null | undefined>(['fetch', 'switch_mode', 'other', null, undefined])(
    'refuses a %s tool call even inside the worktree (network and mode changes are not worktree work)',
    (kind) => {
      const verdict = judgeToolCall(kind, [at(`${WT}/a.txt`)], WT);
      expect(verdict).toEqual({ allow: false, reason: expect.stringMatching(/not allowed unattended/) });
    },
  );

  it('allows execute and think without locations, and refuses edit and read without them', () => {
    expect(judgeToolCall('execute', [], WT).allow).toBe(true);
    expect(judgeToolCall('think', [], WT).allow).toBe(true);
    // An edit that names no file cannot be shown to stay in the worktree.
    expect(judgeToolCall('edit', [], WT)).toMatchObject({ allow: false, reason: /names no location/ });
    expect(judgeToolCall('read', [], WT).allow).toBe(false);
  });

  it.each([
    ['an absolute path elsewhere (~/.ssh)', '/root/.ssh/authorized_keys'],
    ['the user repository next to the worktrees', '/srv/boocoder/repo/a.txt'],
    ['a sibling worktree sharing the prefix (startsWith without a separator)', `${WT}-evil/a.txt`],
    ['the parent of the worktree', '/srv/boocoder/worktrees'],
  ])('refuses %s', (_attack, path) => {
    expect(judgeToolCall('edit', [at(path)], WT)).toMatchObject({
      allow: false,
      reason: /outside the worktree/,
    });
  });

  it('refuses the whole request when one location of many is outside', () => {
    const verdict = judgeToolCall('edit', [at(`${WT}/a.txt`), at('/etc/passwd'), at(`${WT}/b.txt`)], WT);
    expect(verdict.allow).toBe(false);
  });

  it('refuses `..` even when the resolved path is inside (the kernel resolves `..` after a symlink)', () => {
    const verdict = judgeToolCall('edit', [{ path: `${WT}/link/../a.txt`, resolved: `${WT}/a.txt` }], WT);
    expect(verdict).toMatchObject({ allow: false, reason: /`\.\.`/ });
  });

  it.each([
    ['NUL (truncation in C code)', `${WT}/a.txt\u0000.png`],
    ['a newline (forged log lines)', `${WT}/a\n.txt`],
  ])('refuses a path with %s', (_attack, path) => {
    expect(judgeToolCall('edit', [at(path)], WT)).toMatchObject({
      allow: false,
      reason: /control characters/,
    });
  });

  it.each([
    ['the worktree’s .git link (hooks, config)', '.git'],
    ['a file in .git', '.git/config'],
    ['a nested repository’s hooks', 'vendor/lib/.git/hooks/pre-commit'],
    ['.git in another case (NTFS, APFS)', '.GIT/config'],
    ['.git with a trailing dot (NTFS)', '.git./config'],
    ['.git with an HFS+ ignorable code point', '.g\u200cit/config'],
    ['the Windows short name of .git', 'git~1/config'],
    ['.gitmodules (fetches other repositories)', '.gitmodules'],
  ])('refuses %s', (_attack, rel) => {
    expect(judgeToolCall('edit', [at(`${WT}/${rel}`)], WT)).toMatchObject({
      allow: false,
      reason: /refused/,
    });
  });

  it('judges a symlink by where it leads: out of the worktree or into .git', () => {
    const out = { path: `${WT}/notes.txt`, resolved: '/root/.ssh/authorized_keys' };
    expect(judgeToolCall('edit', [out], WT)).toMatchObject({ allow: false, reason: /outside the worktree/ });
    const intoGit = { path: `${WT}/hooks/pre-commit`, resolved: `${WT}/.git/hooks/pre-commit` };
    expect(judgeToolCall('edit', [intoGit], WT)).toMatchObject({ allow: false, reason: /\.git/ });
  });

  it('refuses a location that does not resolve (a dangling symlink would be written through)', () => {
    expect(judgeToolCall('edit', [{ path: `${WT}/x`, resolved: null }], WT)).toMatchObject({
      allow: false,
      reason: /does not resolve/,
    });
  });

  it('lets reads and searches name the worktree folder itself, but not edits or deletes of it', () => {
    expect(judgeToolCall('search', [at(WT)], WT).allow).toBe(true);
    expect(judgeToolCall('read', [at(WT)], WT).allow).toBe(true);
    expect(judgeToolCall('delete', [at(WT)], WT)).toMatchObject({ allow: false, reason: /worktree folder/ });
    expect(judgeToolCall('move', [at(WT)], WT).allow).toBe(false);
  });

  it('refuses an empty path and more locations than it will check', () => {
    expect(judgeToolCall('read', [at('')], WT)).toMatchObject({ allow: false, reason: /no path/ });
    const many = Array.from({ length: MAX_LOCATIONS + 1 }, (_, i) => at(`${WT}/f${i}`));
    expect(judgeToolCall('read', many, WT)).toMatchObject({ allow: false, reason: /too many/ });
  });
});

const option = (optionId: string, kind: PermissionOption['kind']): PermissionOption => ({
  optionId,
  name: optionId,
  kind,
});

describe('rejectPermission', () => {
  it('picks reject_once over an earlier reject_always (which would persist), else cancels', () => {
    const offered = [option('A', 'allow_once'), option('RA', 'reject_always'), option('R', 'reject_once')];
    expect(rejectPermission(offered)).toEqual({ outcome: { outcome: 'selected', optionId: 'R' } });
    expect(rejectPermission([option('A', 'allow_once'), option('RA', 'reject_always')])).toEqual({
      outcome: { outcome: 'cancelled' },
    });
  });
});

describe('the file-system half', () => {
  let root: string;
  let wt: string;
  let outside: string;

  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-perm-')));
    wt = join(root, 'wt');
    outside = join(root, 'outside');
    await mkdir(join(wt, 'src'), { recursive: true });
    await mkdir(join(wt, '.git'));
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret\n');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const edit = (path: string, kind: ToolKind = 'edit'): ToolCallUpdate => ({
    toolCallId: 't1',
    kind,
    locations: [{ path }],
  });

  it('allows a new file in a new folder, by absolute or relative path', async () => {
    expect((await judgePermissionRequest(edit(join(wt, 'src/new/deep.ts')), wt)).allow).toBe(true);
    expect((await judgePermissionRequest(edit('src/rel.ts'), wt)).allow).toBe(true);
  });

  it('refuses a write through a symlinked folder that leads out (src -> /etc)', async () => {
    await symlink(outside, join(wt, 'linked'));
    const verdict = await judgePermissionRequest(edit(join(wt, 'linked/passwd')), wt);
    expect(verdict).toMatchObject({ allow: false, reason: /outside the worktree/ });
  });

  it('refuses a write to a symlinked file that leads out (notes.txt -> ~/.ssh/authorized_keys)', async () => {
    await symlink(join(outside, 'secret.txt'), join(wt, 'notes.txt'));
    expect((await judgePermissionRequest(edit(join(wt, 'notes.txt')), wt)).allow).toBe(false);
    expect((await judgePermissionRequest(edit(join(wt, 'notes.txt'), 'read'), wt)).allow).toBe(false);
  });

  it('refuses a dangling symlink, which a write would follow to create its target', async () => {
    await symlink(join(outside, 'planted.txt'), join(wt, 'dangling.txt'));
    const verdict = await judgePermissionRequest(edit(join(wt, 'dangling.txt')), wt);
    expect(verdict).toMatchObject({ allow: false, reason: /does not resolve/ });
  });

  it('refuses a symlink loop', async () => {
    await symlink(join(wt, 'b'), join(wt, 'a'));
    await symlink(join(wt, 'a'), join(wt, 'b'));
    expect((await judgePermissionRequest(edit(join(wt, 'a/x.txt')), wt)).allow).toBe(false);
  });

  it('refuses a symlink inside the worktree that leads into .git (hooks -> .git/hooks)', async () => {
    await symlink(join(wt, '.git'), join(wt, 'innocent'));
    const verdict = await judgePermissionRequest(edit(join(wt, 'innocent/hooks/pre-commit')), wt);
    expect(verdict).toMatchObject({ allow: false, reason: /\.git/ });
  });

  it('allows a symlink that stays inside, and a worktree reached through a symlinked path', async () => {
    await symlink(join(wt, 'src'), join(wt, 'alias'));
    expect((await judgePermissionRequest(edit(join(wt, 'alias/a.ts')), wt)).allow).toBe(true);
    const viaLink = join(root, 'wt-link');
    await symlink(wt, viaLink);
    expect((await judgePermissionRequest(edit(join(viaLink, 'src/a.ts')), viaLink)).allow).toBe(true);
    expect((await judgePermissionRequest(edit(join(wt, 'src/a.ts')), viaLink)).allow).toBe(true);
  });

  it('resolves the deepest existing folder and appends the missing rest', async () => {
    await symlink(outside, join(wt, 'linked'));
    expect(await resolveLocationPath(join(wt, 'linked/a/b.txt'))).toBe(join(outside, 'a/b.txt'));
    expect(await resolveLocationPath(join(wt, 'src/x/y.txt'))).toBe(join(wt, 'src/x/y.txt'));
  });

  it('answers with allow_once or reject_once in a turn without a human, and cancels outside a turn', async () => {
    const responder = new PermissionResponder(wt, silentLogger);
    const options = [
      option('always', 'allow_always'),
      option('once', 'allow_once'),
      option('no', 'reject_once'),
    ];
    const ask = (path: string) => responder.answer({ sessionId: 's', toolCall: edit(path), options });
    expect(await ask(join(wt, 'a.txt'))).toEqual({ outcome: { outcome: 'cancelled' } });
    responder.beginTurn(undefined);
    expect(await ask(join(wt, 'a.txt'))).toEqual({ outcome: { outcome: 'selected', optionId: 'once' } });
    expect(await ask(join(outside, 'a.txt'))).toEqual({ outcome: { outcome: 'selected', optionId: 'no' } });
    responder.endTurn();
    expect(await ask(join(wt, 'a.txt'))).toEqual({ outcome: { outcome: 'cancelled' } });
  });
});
