/**
 * Scenarios the chaos suite plays against a real `boocoder serve` process, shared by the
 * PostgreSQL and embedded-database files.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { expect } from 'vitest';
import { daemonInfoPath } from '../../src/bridge/daemon-discovery.js';
import type { Db } from '../../src/db/db.js';
import { claimNextTask } from '../../src/db/tasks.js';
import { callOk } from './boocoder-app.js';
import { agentGroupsOf, groupMembers, type RunningProcess, waitFor, waitForExit } from './chaos-processes.js';
import { readTask } from './chaos-tasks.js';

/**
 * Waits until the task's agent (a group leader among serve's children) has written `marker` in the
 * worktree; returns the agent's process group id.
 */
export async function waitForAgentMidRun(
  client: Client,
  servePid: number,
  taskId: string,
  marker: string,
): Promise<number> {
  return waitFor('the agent to be mid-run', async () => {
    const t = await callOk<{ worktree_path: string | null }>(client, 'get_task', { task_id: taskId });
    const [leader] = agentGroupsOf(servePid);
    return leader && t.worktree_path && existsSync(join(t.worktree_path, marker)) ? leader : undefined;
  });
}

/**
 * SIGTERM while `taskId`'s agent (group `group`) runs: serve exits 0, the group is dead, daemon.json
 * is gone. `openDb` then gives the database (for PGlite: only now that serve has let go of it).
 */
export async function sigtermAndCheckRequeued(
  serve: RunningProcess,
  home: string,
  taskId: string,
  group: number,
  openDb: () => Promise<Db>,
): Promise<void> {
  serve.child.kill('SIGTERM');
  expect(await waitForExit(serve, 30_000)).toEqual({ code: 0, signal: null });
  expect(groupMembers(group)).toEqual([]);
  expect(existsSync(daemonInfoPath(home))).toBe(false);
  const db = await openDb();
  expect(await readTask(db, taskId)).toMatchObject({
    state: 'pending',
    attempts: 0,
    lease_owner: null,
    lease_expires_at: null,
  });
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pending_changes WHERE task_id = $1',
    [taskId],
  );
  expect(rows[0]?.n).toBe(0);
  // Not lost: the next dispatcher claims it, as its first attempt.
  const next = await claimNextTask(db, 'chaos-next-dispatcher', 30_000);
  expect(next).toMatchObject({ id: taskId, attempts: 1 });
  await db.query(
    `UPDATE tasks SET state = 'cancelled', lease_owner = NULL, lease_expires_at = NULL WHERE id = $1`,
    [taskId],
  );
}
