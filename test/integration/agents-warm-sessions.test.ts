/**
 * Warm agent sessions through a real MCP client and the fixture agent: a chat's follow-up task
 * reuses the live agent process and ACP session, another agent gets its own, an idle session is
 * closed, and a dead process (mid-task or while idle) is replaced by a fresh one.
 */
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openGatedAcpSession } from '../../src/agents/acp/driver.js';
import { WarmSessions } from '../../src/agents/acp/warm-sessions.js';
import { silentLogger } from '../../src/log.js';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Done {
  state: string;
  output_summary: string | null;
  error: string | null;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const pidIn = (done: Done) => Number(/pid:(\d+)/.exec(done.output_summary ?? '')?.[1]);

/** A config file with the fixture agent under two names, so two agents can share a chat. */
async function twoAgentConfig(dir: string): Promise<string> {
  const spec = acpTestAgentSpec();
  const path = join(dir, 'agents.json');
  const agent = { command: spec.command, args: spec.args };
  await writeFile(
    path,
    JSON.stringify({ defaultAgent: 'fixture', agents: { fixture: agent, other: agent } }),
  );
  return path;
}

describeEachDatabase('warm agent sessions', (ctx) => {
  let dir: string;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-warm-')));
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# warm\n' });
  });

  afterAll(async () => {
    await repos?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function start(idleMs: number): Promise<{ boo: TestBoocoder; client: Client }> {
    const boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: await twoAgentConfig(dir),
      BOOCODER_AGENT_IDLE_MS: String(idleMs),
    });
    return { boo, client: await connectHttpClient(boo.http.url) };
  }

  async function runTask(client: Client, input: string, extra: Record<string, unknown> = {}) {
    const queued = await callOk<{ task_id: string; session_id: string; chat_id: string }>(
      client,
      'new_task',
      {
        project: repo,
        input,
        ...extra,
      },
    );
    const done = await callOk<Done>(client, 'get_task', { task_id: queued.task_id, wait_s: 50 });
    return { queued, done };
  }

  async function agentSession(chatId: string, agent = 'fixture') {
    const { rows } = await ctx.db.query<{ status: string; agent_session_id: string | null }>(
      'SELECT status, agent_session_id FROM agent_sessions WHERE chat_id = $1 AND agent = $2',
      [chatId, agent],
    );
    return rows[0];
  }

  describe('with a long idle time', () => {
    let boo: TestBoocoder;
    let client: Client;

    beforeAll(async () => {
      ({ boo, client } = await start(600_000));
    });

    afterAll(async () => {
      await client?.close();
      await boo?.close();
    });

    it('reuses the live agent process and ACP session for the next task in the chat', async () => {
      const first = await runTask(client, 'pid\nwrite one.txt 1');
      expect(first.done.state).toBe('completed');
      const firstSession = await agentSession(first.queued.chat_id);
      const second = await runTask(client, 'pid\nwrite two.txt 2', {
        session_id: first.queued.session_id,
        chat_id: first.queued.chat_id,
      });
      expect(second.done.state).toBe('completed');
      expect(pidIn(second.done)).toBe(pidIn(first.done));
      expect(isAlive(pidIn(first.done))).toBe(true);
      const secondSession = await agentSession(first.queued.chat_id);
      expect(secondSession).toMatchObject({
        status: 'idle',
        agent_session_id: firstSession?.agent_session_id,
      });
      expect(firstSession?.agent_session_id).toBeTruthy();
      // The reused process is recorded for the second task too, for the orphan-kill logic.
      const { rows } = await ctx.db.query<{ agent_pid: number | null }>(
        'SELECT agent_pid FROM tasks WHERE id = $1',
        [second.queued.task_id],
      );
      expect(rows[0]?.agent_pid).toBe(pidIn(first.done));
    });

    it('starts a separate process for another agent in the same chat', async () => {
      const first = await runTask(client, 'pid');
      const other = await runTask(client, 'pid', {
        session_id: first.queued.session_id,
        chat_id: first.queued.chat_id,
        agent: 'other',
      });
      expect(other.done.state).toBe('completed');
      expect(pidIn(other.done)).not.toBe(pidIn(first.done));
      expect(isAlive(pidIn(first.done))).toBe(true);
      expect(isAlive(pidIn(other.done))).toBe(true);
    });

    it('replaces a process that crashed during a task and marks the session crashed', async () => {
      const first = await runTask(client, 'pid');
      const same = { session_id: first.queued.session_id, chat_id: first.queued.chat_id };
      const crash = await runTask(client, 'crash', same);
      expect(crash.done.state).toBe('failed');
      expect(await agentSession(first.queued.chat_id)).toMatchObject({ status: 'crashed' });
      const after = await runTask(client, 'pid', same);
      expect(after.done.state).toBe('completed');
      expect(pidIn(after.done)).not.toBe(pidIn(first.done));
      expect(await agentSession(first.queued.chat_id)).toMatchObject({ status: 'idle' });
    });

    it('marks an idle session crashed when its process dies, and the next task starts fresh', async () => {
      const first = await runTask(client, 'pid');
      const pid = pidIn(first.done);
      process.kill(-pid, 'SIGKILL');
      await vi.waitFor(
        async () => expect(await agentSession(first.queued.chat_id)).toMatchObject({ status: 'crashed' }),
        { timeout: 20_000, interval: 50 },
      );
      const after = await runTask(client, 'pid', {
        session_id: first.queued.session_id,
        chat_id: first.queued.chat_id,
      });
      expect(after.done.state).toBe('completed');
      expect(pidIn(after.done)).not.toBe(pid);
    });
  });

  it('stops the warm agents when the app closes', async () => {
    const { boo, client } = await start(600_000);
    let pid = 0;
    let chatId = '';
    try {
      const first = await runTask(client, 'pid');
      pid = pidIn(first.done);
      chatId = first.queued.chat_id;
      expect(isAlive(pid)).toBe(true);
    } finally {
      await client.close();
      await boo.close();
    }
    expect(isAlive(pid)).toBe(false);
    // A restarted server must not report a session whose process is gone as idle.
    expect(await agentSession(chatId)).toMatchObject({ status: 'closed' });
  });

  it('closes a session after its idle time; the chat then goes on in a new one', async () => {
    const { boo, client } = await start(300);
    try {
      const first = await runTask(client, 'pid');
      const pid = pidIn(first.done);
      expect(pid).toBeGreaterThan(1);
      await vi.waitFor(() => expect(isAlive(pid)).toBe(false), { timeout: 20_000, interval: 50 });
      await vi.waitFor(
        async () => expect(await agentSession(first.queued.chat_id)).toMatchObject({ status: 'closed' }),
        { timeout: 20_000, interval: 50 },
      );
      // The chat's next task asks the new process to load the old session; this agent no longer
      // knows it, so the task runs in a new session instead of failing.
      const before = await agentSession(first.queued.chat_id);
      const next = await runTask(client, 'write two.txt 2', {
        session_id: first.queued.session_id,
        chat_id: first.queued.chat_id,
      });
      expect(next.done.state).toBe('completed');
      const after = await agentSession(first.queued.chat_id);
      expect(after?.agent_session_id).toBeTruthy();
      expect(after?.agent_session_id).not.toBe(before?.agent_session_id);
    } finally {
      await client.close();
      await boo.close();
    }
  });
});

describe('the warm session pool', () => {
  it('replaces a session whose config hash changed', async () => {
    const cwd = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-warm-pool-')));
    const pool = new WarmSessions({ idleMs: 600_000, logger: silentLogger });
    const open = () =>
      openGatedAcpSession({
        spec: acpTestAgentSpec(),
        cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        timeoutMs: 30_000,
        logger: silentLogger,
      });
    const key = { chatId: 'c1', agent: 'fixture' };
    try {
      const a = await pool.acquire(key, 'hash-a', open);
      if (!a) throw new Error('no session');
      await pool.release(key, a.session);
      const again = await pool.acquire(key, 'hash-a', open);
      expect(again).toMatchObject({ reused: true });
      expect(again?.session).toBe(a.session);
      if (again) await pool.release(key, again.session);
      const b = await pool.acquire(key, 'hash-b', open);
      expect(b?.reused).toBe(false);
      expect(b?.session.pid).not.toBe(a.session.pid);
      expect(isAlive(a.session.pid)).toBe(false);
      if (b) await pool.release(key, b.session);
    } finally {
      await pool.closeAll();
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
