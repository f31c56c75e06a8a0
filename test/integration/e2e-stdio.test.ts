/**
 * The real `boocoder` command driven over stdio by the SDK's Client, as an MCP client launches it.
 * On the embedded database two stdio clients share one auto-started daemon and see the same tasks;
 * a task keeps running when the client that queued it exits. With DATABASE_URL, stdio serves
 * in-process on PostgreSQL.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { callOk, testHome } from '../helpers/boocoder-app.js';
import { databaseBackends, type TestDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'boocoder.js');

async function stdioClient(env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'stdio-test', version: '1.0.0' }, { capabilities: { roots: {} } });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [BIN, 'stdio'], env, stderr: 'pipe' }),
  );
  return client;
}

async function stopDaemon(home: string): Promise<void> {
  const info = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8').catch(() => '{}')) as {
    pid?: number;
  };
  if (!info.pid) return;
  process.kill(info.pid, 'SIGTERM');
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(info.pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(info.pid, 'SIGKILL');
}

describe('stdio on the embedded database (bridge to a local daemon)', () => {
  const repos: TempRepos = tempRepos();
  const homes: string[] = [];
  const clients: Client[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    for (const home of homes) {
      await stopDaemon(home);
      await rm(home, { recursive: true, force: true });
    }
    await repos.cleanup();
  });

  it('two clients share one daemon, see the same tasks, and a task outlives its client', async () => {
    const { home, env } = await testHome();
    homes.push(home);
    const repo = await repos.repo();
    const [a, b] = await Promise.all([stdioClient(env), stdioClient(env)]);
    clients.push(b);
    // The bridges answer initialize themselves; a tool call is answered once the daemon is up.
    await a.callTool({ name: 'list_tasks', arguments: {} }, undefined, { timeout: 170_000 });
    // The daemon must be no descendant of a bridge: some clients (opencode) SIGTERM every descendant
    // of an MCP server they stop, which would kill the daemon and the tasks it runs.
    const daemonPid = (JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { pid: number }).pid;
    const parentOf = async (pid: number) =>
      Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ')[1]);
    const bridgePids = [a, b].map((c) => (c.transport as StdioClientTransport).pid);
    expect(bridgePids).not.toContain(await parentOf(daemonPid));
    const queued = await callOk<{ task_id: string }>(a, 'new_task', {
      project: repo,
      input: 'sleep 500\nwrite from-a.txt a',
    });
    await a.close();
    const done = await callOk<{ state: string; pending_changes: number }>(b, 'get_task', {
      task_id: queued.task_id,
      wait_s: 50,
    });
    expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
    const listed = await callOk<{ tasks: { task_id: string }[] }>(b, 'list_tasks', {});
    expect(listed.tasks.map((t) => t.task_id)).toContain(queued.task_id);
    // The daemon's first start (creating the embedded database) can take a minute on a busy machine.
  }, 180_000);

  it('defaults the project to the client root', async () => {
    const { home, env } = await testHome();
    homes.push(home);
    const repo = await repos.repo();
    const client = new Client({ name: 'roots-test', version: '1.0.0' }, { capabilities: { roots: {} } });
    const { ListRootsRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    client.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: `file://${repo}`, name: 'repo' }],
    }));
    await client.connect(
      new StdioClientTransport({ command: process.execPath, args: [BIN, 'stdio'], env, stderr: 'pipe' }),
    );
    clients.push(client);
    const queued = await callOk<{ task_id: string }>(client, 'new_task', { input: 'write rooted.txt r' });
    const done = await callOk<{ state: string; project_id: string }>(client, 'get_task', {
      task_id: queued.task_id,
      wait_s: 50,
    });
    expect(done.state).toBe('completed');
  }, 180_000);
});

const pgBackend = databaseBackends().find((b) => b.name === 'pg');

describe.skipIf(!pgBackend)('stdio with DATABASE_URL (in-process server on PostgreSQL)', () => {
  const repos: TempRepos = tempRepos();
  let testDb: TestDatabase | undefined;
  let home: string | undefined;

  afterAll(async () => {
    await testDb?.close();
    if (home) await rm(home, { recursive: true, force: true });
    await repos.cleanup();
  });

  it('answers a 10 MB request with an error for its id and then tools/list (the session survives)', async () => {
    testDb ??= await (pgBackend as NonNullable<typeof pgBackend>).create();
    const t = await testHome({ DATABASE_URL: testDb.connectionString as string });
    const client = await stdioClient(t.env);
    try {
      const refused = await client
        .callTool({ name: 'new_task', arguments: { input: 'x'.repeat(10 * 1024 * 1024) } })
        .then(
          () => undefined,
          (err: unknown) => err as Error,
        );
      expect(refused?.message).toMatch(
        /E_INVALID_INPUT: the message is 10\.0 MiB, over boocoder's 4\.0 MiB limit/,
      );
      expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('new_task');
    } finally {
      await client.close();
      await rm(t.home, { recursive: true, force: true });
    }
  });

  it('runs the flow end to end', async () => {
    testDb ??= await (pgBackend as NonNullable<typeof pgBackend>).create();
    const t = await testHome({ DATABASE_URL: testDb.connectionString as string });
    home = t.home;
    const repo = await repos.repo();
    const client = await stdioClient(t.env);
    try {
      const queued = await callOk<{ task_id: string }>(client, 'new_task', {
        project: repo,
        input: 'write pg.txt on postgres',
      });
      const done = await callOk<{ state: string }>(client, 'get_task', {
        task_id: queued.task_id,
        wait_s: 50,
      });
      expect(done.state).toBe('completed');
      const { changes } = await callOk<{ changes: { change_id: string }[] }>(client, 'list_pending_changes', {
        task_id: queued.task_id,
      });
      await callOk(client, 'apply_change', { change_id: changes[0]?.change_id, action: 'apply' });
      expect(await readFile(join(repo, 'pg.txt'), 'utf8')).toBe('on postgres');
    } finally {
      await client.close();
    }
  });
});
