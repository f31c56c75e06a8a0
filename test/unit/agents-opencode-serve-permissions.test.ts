/**
 * `opencode serve` permission requests (the `permission.asked` payloads of opencode 1.18.33) judged
 * by the default policy of acp-client-policy.ts and, under `ask`, handed to a human. Real temp
 * folders: the policy resolves paths on disk.
 */

import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerServePermission,
  replyOf,
  toAcpPermissionRequest,
} from '../../src/agents/opencode-serve/permissions.js';
import { silentLogger } from '../../src/log.js';
import { type PermissionAsker, PermissionResponder } from '../../src/permissions/responder.js';

let root: string;
let wt: string;
let outside: string;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-serve-perm-')));
  wt = join(root, 'wt');
  outside = join(root, 'outside');
  await mkdir(join(wt, '.git', 'hooks'), { recursive: true });
  await mkdir(outside);
  await symlink(outside, join(wt, 'linked'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A payload shaped like opencode's: {id, sessionID, permission, patterns, metadata, always, tool}. */
const asked = (permission: string, patterns: unknown[], metadata: Record<string, unknown> = {}) => ({
  id: 'per_1',
  sessionID: 'ses_1',
  permission,
  patterns,
  metadata,
  always: ['*'],
  tool: { messageID: 'msg_1', callID: 'call_1' },
});

/** Answers with a responder in a turn, with or without a human. */
async function answer(request: Record<string, unknown>, asker?: PermissionAsker) {
  const responder = new PermissionResponder(wt, silentLogger);
  responder.beginTurn(asker);
  return answerServePermission(responder, request, wt);
}

describe('opencode serve permission requests under the default policy', () => {
  it('allows once an edit, a read, a search and a command inside the worktree', async () => {
    expect(await answer(asked('edit', ['a.txt'], { filepath: join(wt, 'a.txt'), diff: '+x' }))).toBe('once');
    expect(await answer(asked('edit', ['src/new/b.ts', 'c.ts']))).toBe('once');
    expect(await answer(asked('read', ['README.md']))).toBe('once');
    expect(await answer(asked('grep', ['foo.*bar'], { pattern: 'foo.*bar' }))).toBe('once');
    expect(await answer(asked('bash', ['npm test'], { command: 'npm test' }))).toBe('once');
  });

  it('refuses files outside the worktree, in its .git, or behind a symlink that leads out', async () => {
    expect(await answer(asked('edit', ['x'], { filepath: join(outside, 'x') }))).toBe('reject');
    expect(await answer(asked('edit', ['../outside/x']))).toBe('reject');
    expect(await answer(asked('edit', ['.git/hooks/post-checkout']))).toBe('reject');
    expect(await answer(asked('edit', ['linked/x'], { filepath: join(wt, 'linked', 'x') }))).toBe('reject');
    expect(await answer(asked('grep', ['x'], { path: outside }))).toBe('reject');
  });

  it('refuses what cannot be kept in the worktree: other folders, the web, subagents, loops', async () => {
    const external = asked('external_directory', [`${outside}/*`], { filepath: outside, parentDir: outside });
    expect(await answer(external)).toBe('reject');
    expect(await answer(asked('webfetch', ['https://example.com'], { url: 'https://example.com' }))).toBe(
      'reject',
    );
    expect(await answer(asked('task', ['explore']))).toBe('reject');
    expect(await answer(asked('doom_loop', ['write']))).toBe('reject');
    expect(toAcpPermissionRequest(asked('constructor', ['a.txt']), wt).toolCall.kind).toBe('other');
    // An edit that names no file, or a malformed one, cannot be shown to stay inside.
    expect(await answer(asked('edit', []))).toBe('reject');
    expect(await answer(asked('edit', [42]))).toBe('reject');
    expect(
      await answer(
        asked(
          'edit',
          Array.from({ length: 65 }, (_, i) => `f${i}.txt`),
        ),
      ),
    ).toBe('reject');
  });
});

describe('opencode serve permission requests under the ask policy', () => {
  it('hands an allowed request to the human as an ACP request with once and reject', async () => {
    const seen: acp.RequestPermissionRequest[] = [];
    const human =
      (optionId: string): PermissionAsker =>
      async (request) => {
        seen.push(request);
        return { outcome: { outcome: 'selected', optionId } };
      };
    const request = asked('edit', ['a.txt'], { filepath: join(wt, 'a.txt') });
    expect(await answer(request, human('once'))).toBe('once');
    expect(await answer(request, human('reject'))).toBe('reject');
    expect(seen[0]).toEqual({
      sessionId: 'ses_1',
      toolCall: {
        toolCallId: 'call_1',
        title: 'edit: a.txt',
        kind: 'edit',
        locations: [{ path: join(wt, 'a.txt') }, { path: 'a.txt' }],
      },
      options: [
        { optionId: 'once', name: 'Allow once', kind: 'allow_once' },
        { optionId: 'reject', name: 'Reject', kind: 'reject_once' },
      ],
    });
  });

  it('never asks a human about a request the policy refuses', async () => {
    let asked_ = 0;
    const human: PermissionAsker = async () => {
      asked_ += 1;
      return { outcome: { outcome: 'selected', optionId: 'once' } };
    };
    expect(await answer(asked('edit', ['../outside/x']), human)).toBe('reject');
    expect(asked_).toBe(0);
  });

  it('refuses a request still waiting when the turn ends, and any answer but once', async () => {
    const responder = new PermissionResponder(wt, silentLogger);
    const waiting = new Promise<void>((started) => {
      responder.beginTurn(
        (_request, signal) =>
          new Promise((resolve) => {
            started();
            signal.addEventListener('abort', () => resolve({ outcome: { outcome: 'cancelled' } }));
          }),
      );
    });
    const reply = answerServePermission(responder, asked('bash', ['ls']), wt);
    await waiting;
    responder.endTurn();
    expect(await reply).toBe('reject');
    expect(replyOf({ outcome: { outcome: 'selected', optionId: 'always' } })).toBe('reject');
    expect(toAcpPermissionRequest(asked('bash', ['ls']), wt).toolCall.locations).toEqual([]);
  });
});
