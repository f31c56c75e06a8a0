/**
 * Bounded warm agents, with the real ACP fixture agent: past the count cap or the memory cap (read
 * from /proc) the least recently used idle agent is closed, a busy one never; a chat that has had
 * one task keeps its agent for the short idle time, a chat with follow-ups for the long one; and
 * listWarmAgents reports each pooled agent.
 */
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openGatedAcpSession } from '../../src/agents/acp/driver.js';
import { type WarmKey, WarmSessions, type WarmSessionsOptions } from '../../src/agents/acp/warm-sessions.js';
import { silentLogger } from '../../src/log.js';
import { isProcessAlive } from '../../src/process-liveness.js';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';

let cwd: string;
let pool: WarmSessions | undefined;

beforeEach(async () => {
  cwd = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-warm-cap-')));
});

afterEach(async () => {
  await pool?.closeAll();
  pool = undefined;
  await rm(cwd, { recursive: true, force: true });
});

const open = () =>
  openGatedAcpSession({
    spec: acpTestAgentSpec(),
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 30_000,
    logger: silentLogger,
  });

function makePool(o: Partial<WarmSessionsOptions>): WarmSessions {
  pool = new WarmSessions({ idleMs: 600_000, logger: silentLogger, ...o });
  return pool;
}

const chat = (id: string): WarmKey => ({ chatId: id, agent: 'fixture' });

/** Runs one "task" on the chat's warm agent: acquire, then release. Returns the agent's pid. */
async function runOn(p: WarmSessions, key: WarmKey): Promise<number> {
  const lease = await p.acquire(key, 'hash', open);
  if (!lease) throw new Error('no session');
  await p.release(key, lease.session);
  return lease.session.pid;
}

describe('bounded warm agents', () => {
  it('closes the least recently used idle agent past the count cap, and lists the others', async () => {
    const p = makePool({ maxWarm: 2 });
    const a = await runOn(p, chat('a'));
    const b = await runOn(p, chat('b'));
    expect(await runOn(p, chat('a'))).toBe(a); // a is now more recently used than b
    const c = await runOn(p, chat('c'));
    expect(isProcessAlive(b)).toBe(false);
    expect(isProcessAlive(a)).toBe(true);
    expect(isProcessAlive(c)).toBe(true);
    const listed = p.listWarmAgents();
    expect(listed.map((w) => [w.chatId, w.pid, w.tasksRun])).toEqual([
      ['c', c, 1],
      ['a', a, 2],
    ]);
    for (const w of listed) {
      expect(w.agent).toBe('fixture');
      expect(w.idleMs).toBeGreaterThanOrEqual(0);
      if (process.platform === 'linux') expect(w.memoryBytes).toBeGreaterThan(0);
    }
  });

  it('never closes a busy agent for the cap', async () => {
    const p = makePool({ maxWarm: 1 });
    const busy = await p.acquire(chat('busy'), 'hash', open);
    if (!busy) throw new Error('no session');
    const other = await runOn(p, chat('other'));
    expect(isProcessAlive(busy.session.pid)).toBe(true);
    expect(isProcessAlive(other)).toBe(false);
    expect(p.listWarmAgents()).toMatchObject([{ chatId: 'busy', idleMs: 0, tasksRun: 1 }]);
    await p.release(chat('busy'), busy.session);
    expect(isProcessAlive(busy.session.pid)).toBe(true);
  });

  it.skipIf(process.platform !== 'linux')(
    'closes idle agents past the memory cap read from /proc',
    async () => {
      const p = makePool({ maxWarm: 10, maxMemoryBytes: 1 });
      const pid = await runOn(p, chat('m'));
      expect(isProcessAlive(pid)).toBe(false);
      expect(p.listWarmAgents()).toEqual([]);
    },
  );

  it('keeps a one-task chat warm briefly and a chat with follow-ups for the long idle time', async () => {
    const p = makePool({ idleMs: 600_000, firstIdleMs: 200 });
    const followed = await runOn(p, chat('followed'));
    expect(await runOn(p, chat('followed'))).toBe(followed);
    const once = await runOn(p, chat('once'));
    await vi.waitFor(() => expect(isProcessAlive(once)).toBe(false), { timeout: 20_000, interval: 50 });
    expect(isProcessAlive(followed)).toBe(true);
    expect(p.listWarmAgents().map((w) => w.chatId)).toEqual(['followed']);
  });
});
