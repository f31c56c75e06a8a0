/**
 * The permission policy lets an agent call boocoder's own sub-task tools unattended (they are
 * confined server-side by the scoped credential), and nothing else under a look-alike name.
 */
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSubtaskToolCall } from '../../src/permissions/policy.js';
import { judgePermissionRequest } from '../../src/permissions/responder.js';

describe('sub-task tools in the permission policy', () => {
  let wt: string;
  beforeAll(async () => {
    wt = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-subtask-policy-')));
  });
  afterAll(async () => {
    await rm(wt, { recursive: true, force: true });
  });

  it.each([
    'boocoder_new_task',
    'boocoder_get_task',
    'boocoder_list_tasks',
    'boocoder_list_pending_changes',
    'mcp__boocoder__new_task',
    'boocoder__new_task',
    'new_task (boocoder MCP Server)',
  ])('allows %s', async (title) => {
    expect(isSubtaskToolCall(title, 0)).toBe(true);
    const verdict = await judgePermissionRequest({ toolCallId: 't1', title, kind: 'other' }, wt);
    expect(verdict.allow).toBe(true);
  });

  it.each([
    'boocoder_apply_change',
    'boocoder_answer_permission',
    'mcp__boocoder__apply_change',
    'evil_new_task',
    'boocoder_new_task; rm -rf /',
    'webfetch',
  ])('does not allow %s', async (title) => {
    expect(isSubtaskToolCall(title, 0)).toBe(false);
    const verdict = await judgePermissionRequest({ toolCallId: 't1', title, kind: 'other' }, wt);
    expect(verdict.allow).toBe(false);
  });

  it('does not let the title carry a tool call that names locations', async () => {
    const verdict = await judgePermissionRequest(
      { toolCallId: 't1', title: 'boocoder_new_task', kind: 'edit', locations: [{ path: '/etc/passwd' }] },
      wt,
    );
    expect(verdict.allow).toBe(false);
  });
});
