/**
 * Safe retries through a real MCP client, on the embedded PostgreSQL and the server: new_task sent again with the
 * same request_id answers with the task the first call created (replayed: true), also when the
 * retries race each other; another project or another id queues a new task; an id older than the
 * replay window is released and queues a new one.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Queued {
  task_id: string;
  session_id: string;
  chat_id: string;
  replayed: boolean;
}

describeEachDatabase('new_task request_id', (ctx) => {
  let boo: TestBoocoder;
  let clients: Client[];
  let repos: TempRepos;
  let repo: string;
  let other: string;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    // Separate clients: separate HTTP sessions, so the calls really are in flight together.
    clients = await Promise.all([0, 1, 2, 3].map(() => connectHttpClient(boo.http.url)));
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
    other = await repos.repo({ 'README.md': '# other\n' });
  });
  afterAll(async () => {
    await Promise.all((clients ?? []).map((c) => c.close()));
    await boo?.close();
    await repos?.cleanup();
  });

  const queue = (client: Client, args: Record<string, unknown>) =>
    callOk<Queued>(client, 'new_task', { project: repo, input: 'say hi', ...args });

  const rowsWith = async (requestId: string) =>
    (await ctx.db.query('SELECT id FROM tasks WHERE request_id = $1', [requestId])).rows;

  it('answers a retry with the first call’s task, once the retries race too', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        queue(clients[i % clients.length] as Client, { request_id: 'race-1' }),
      ),
    );
    const ids = new Set(answers.map((a) => a.task_id));
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    expect(await rowsWith('race-1')).toHaveLength(1);
    const again = await queue(clients[0] as Client, { request_id: 'race-1', input: 'a different prompt' });
    expect(again).toMatchObject({ task_id: [...ids][0], replayed: true });
  });

  it('queues a new task for another id, no id, or the same id in another project', async () => {
    const a = await queue(clients[0] as Client, { request_id: 'r-a' });
    const b = await queue(clients[0] as Client, { request_id: 'r-b' });
    const c = await queue(clients[0] as Client, { request_id: 'r-a', project: other });
    const d = await queue(clients[0] as Client, {});
    expect(new Set([a.task_id, b.task_id, c.task_id, d.task_id]).size).toBe(4);
    expect([a, b, c, d].map((x) => x.replayed)).toEqual([false, false, false, false]);
  });

  it('releases an id older than the replay window and queues a new task for it', async () => {
    const first = await queue(clients[0] as Client, { request_id: 'old' });
    await ctx.db.query(`UPDATE tasks SET created_at = created_at - interval '25 hours' WHERE id = $1`, [
      first.task_id,
    ]);
    const second = await queue(clients[0] as Client, { request_id: 'old' });
    expect(second.replayed).toBe(false);
    expect(second.task_id).not.toBe(first.task_id);
    expect(await rowsWith('old')).toEqual([{ id: second.task_id }]);
  });
});
