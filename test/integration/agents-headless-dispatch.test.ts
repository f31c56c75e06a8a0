/**
 * The headless path through boocoder's dispatcher with a fake agent binary on a fake PATH
 * (test/fixtures/headless-fake-agent.mjs installed as `codex` and `opencode`), on both databases:
 * a follow-up resumes the codex thread and records only its own usage (codex reports thread
 * totals), and cancel_task kills the running agent's whole process group.
 */
import { chmod, copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readProcStat } from '../../src/agents/orphaned-agents.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const FAKE = new URL('../fixtures/headless-fake-agent.mjs', import.meta.url);

interface Queued {
  task_id: string;
  session_id: string;
  chat_id: string;
}

describeEachDatabase('headless tasks with a fake agent on PATH', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;

  beforeAll(async () => {
    repos = tempRepos();
    const bin = join(await repos.dir(), 'bin');
    await mkdir(bin);
    for (const name of ['codex', 'opencode']) {
      await copyFile(FAKE, join(bin, name));
      await chmod(join(bin, name), 0o755);
    }
    boo = await startTestBoocoder(ctx.db, { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` });
    client = await connectHttpClient(boo.http.url);
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  async function settled(taskId: string): Promise<{ state: string; error: string | null }> {
    for (;;) {
      const t = await callOk<{ state: string; error: string | null }>(client, 'get_task', {
        task_id: taskId,
        wait_s: 30,
      });
      if (t.state !== 'pending' && t.state !== 'running') return t;
    }
  }

  const argvChange = async (taskId: string) => {
    const { changes } = await callOk<{ changes: { file_path: string; diff: string }[] }>(
      client,
      'list_pending_changes',
      { task_id: taskId },
    );
    return changes.find((c) => c.file_path === 'argv.json')?.diff ?? '';
  };

  it('codex: a follow-up resumes the thread and records its own usage, not the thread totals', async () => {
    const repo = await repos.repo({ 'README.md': '# demo\n' });
    const base = { project: repo, agent: 'codex', execution_path: 'headless' };
    const first = await callOk<Queued>(client, 'new_task', { ...base, input: 'first turn' });
    expect(await settled(first.task_id)).toMatchObject({ state: 'completed', error: null });
    const second = await callOk<Queued>(client, 'new_task', {
      ...base,
      input: 'second turn',
      chat_id: first.chat_id,
    });
    expect(await settled(second.task_id)).toMatchObject({ state: 'completed', error: null });

    expect(await argvChange(first.task_id)).not.toContain('resume');
    expect(await argvChange(second.task_id)).toContain('"exec","resume","--json"');
    expect(await argvChange(second.task_id)).toContain('"--","thread-fake-1","-"]');
    const { agent_sessions } = await callOk<{ agent_sessions: Record<string, unknown>[] }>(
      client,
      'get_agent_sessions',
      { session_id: first.session_id },
    );
    // The fake reported 120/30 then 240/60 (thread totals): two turns of 120/30 each.
    expect(agent_sessions).toEqual([
      expect.objectContaining({
        agent: 'codex',
        backend: 'pty',
        status: 'idle',
        agent_session_id: 'thread-fake-1',
        input_tokens: 240,
        output_tokens: 60,
      }),
    ]);
  });

  it('cancel_task stops the running agent and everything in its process group', async () => {
    const repo = await repos.repo({ 'README.md': '# demo\n' });
    const q = await callOk<Queued>(client, 'new_task', {
      project: repo,
      agent: 'opencode',
      execution_path: 'headless',
      input: 'spawn-hang',
    });
    const worktree = join(boo.home, 'worktrees', q.session_id);
    let grandchild = Number.NaN;
    while (Number.isNaN(grandchild)) {
      grandchild = Number(await readFile(join(worktree, 'grandchild.pid'), 'utf8').catch(() => 'NaN'));
      await delay(50);
    }
    const pid = Number(await readFile(join(worktree, 'pid'), 'utf8'));
    expect(readProcStat(grandchild)?.pgrp).toBe(pid);
    await callOk(client, 'cancel_task', { task_id: q.task_id });
    expect(await settled(q.task_id)).toMatchObject({ state: 'cancelled' });
    expect(isProcessGroupAlive(pid)).toBe(false);
    expect(readProcStat(grandchild)?.pgrp).not.toBe(pid);
  });
});
