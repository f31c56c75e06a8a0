/**
 * The inbox and resource subscriptions through the SDK's Client, on both databases. Over HTTP the
 * client talks to a boocoder process WITHOUT a dispatcher, so the task it queues runs in another
 * one on the same database: its start, end and the review of its change reach the client only
 * through LISTEN/NOTIFY. Over stdio: the real `boocoder stdio` command (bridge to its daemon).
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { hasSubscriptions } from '../../src/resources/subscriptions.js';
import { createServer } from '../../src/server.js';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
  testHome,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

/** Collects a client's resource updates and log messages; `until` waits for one to arrive. */
function listen(client: Client) {
  const updated: string[] = [];
  const logs: Record<string, unknown>[] = [];
  let wake = () => {};
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updated.push(n.params.uri);
    wake();
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(n.params.data as Record<string, unknown>);
    wake();
  });
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise<void>((resolve) => (wake = resolve));
  };
  return { updated, logs, until };
}

describeEachDatabase('inbox and subscriptions across processes', (ctx) => {
  let runner: TestBoocoder;
  let front: App;
  let http: RunningHttpServer;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  const servers: McpServer[] = [];
  let frontHome: string | undefined;

  beforeAll(async () => {
    runner = await startTestBoocoder(ctx.db);
    const { home, env } = await testHome();
    frontHome = home;
    const config = loadConfig(env);
    front = await startApp({ config, logger: silentLogger, withDispatcher: false, db: ctx.db });
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: config.token,
      allowedOrigins: [],
      maxSessions: 5,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: () => {
        const server = createServer(front.deps);
        servers.push(server);
        return server;
      },
    });
    client = await connectHttpClient(http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
  });

  afterAll(async () => {
    await client?.close();
    await http?.close();
    await front?.close();
    await runner?.close();
    await repos?.cleanup();
    if (frontHome) await rm(frontHome, { recursive: true, force: true });
  });

  it('tells a subscriber when its task starts and ends, and when its change is applied; logs both', async () => {
    const seen = listen(client);
    await client.setLoggingLevel('info');
    expect(client.getServerCapabilities()?.resources?.subscribe).toBe(true);
    await client.subscribeResource({ uri: 'boocoder://inbox' });
    expect(hasSubscriptions(servers[0] as McpServer)).toBe(true);

    const { task_id } = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'sleep 300\nwrite a.txt hi',
    });
    await client.subscribeResource({ uri: `boocoder://tasks/${task_id}` });
    await seen.until(() => seen.updated.filter((u) => u === 'boocoder://inbox').length >= 1);
    expect(seen.updated).toContain(`boocoder://tasks/${task_id}`);
    await seen.until(() => seen.logs.some((l) => l.event === 'task completed'));
    expect(seen.logs).toContainEqual(expect.objectContaining({ event: 'task started', task_id }));

    // Finished with a change not yet reviewed: in the inbox, which the resource shows as well.
    const inbox = await callOk<{ entries: { reason: string; task: { task_id: string } }[] }>(
      client,
      'list_inbox',
      {},
    );
    expect(inbox.entries[0]).toMatchObject({ reason: 'unreviewed', task: { task_id } });
    const read = await client.readResource({ uri: 'boocoder://inbox' });
    expect((read.contents[0] as { text: string }).text).toContain(task_id);
    const task = await client.readResource({ uri: `boocoder://tasks/${task_id}` });
    expect(JSON.parse((task.contents[0] as { text: string }).text)).toMatchObject({ state: 'completed' });

    const before = seen.updated.length;
    const { changes } = await callOk<{ changes: { change_id: string }[] }>(client, 'list_pending_changes', {
      task_id,
    });
    await callOk(client, 'apply_change', { change_id: changes[0]?.change_id, action: 'apply' });
    await seen.until(() => seen.updated.slice(before).includes('boocoder://inbox'));
    expect(seen.updated.slice(before)).toContain(`boocoder://tasks/${task_id}`);
    const after = await callOk<{ entries: { task: { task_id: string } }[] }>(client, 'list_inbox', {});
    expect(after.entries.map((e) => e.task.task_id)).not.toContain(task_id);

    await client.unsubscribeResource({ uri: 'boocoder://inbox' });
    await client.unsubscribeResource({ uri: `boocoder://tasks/${task_id}` });
    expect(hasSubscriptions(servers[0] as McpServer)).toBe(false);
  });

  it('list_inbox waits for the next entry: a failed task, with its error', async () => {
    const first = await callOk<{ cursor: string }>(client, 'list_inbox', {});
    const waiting = callOk<{
      entries: { reason: string; task: { task_id: string; error_code: string } }[];
      waited_out: boolean;
    }>(client, 'list_inbox', { wait_s: 50, since: first.cursor });
    const { task_id } = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'fail on purpose',
    });
    const inbox = await waiting;
    expect(inbox.waited_out).toBe(false);
    expect(inbox.entries[0]).toMatchObject({
      reason: 'failed',
      task: { task_id, error_code: 'E_AGENT_FAILED' },
    });
  });

  it('a connection holding a subscription is not evicted to make room for another', async () => {
    const one = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 1,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: () => createServer(front.deps),
      hasSubscriptions,
    });
    const first = await connectHttpClient(one.url);
    try {
      await first.subscribeResource({ uri: 'boocoder://inbox' });
      await expect(connectHttpClient(one.url)).rejects.toThrow();
      await first.unsubscribeResource({ uri: 'boocoder://inbox' });
      const second = await connectHttpClient(one.url);
      await second.close();
    } finally {
      await first.close();
      await one.close();
    }
  });

  it('refuses a subscription to something that is not a boocoder resource', async () => {
    await expect(client.subscribeResource({ uri: 'file:///etc/passwd' })).rejects.toThrow(
      /cannot be subscribed to/,
    );
    expect(await callError(client, 'list_inbox', { since: 'yesterday' })).toMatch(/^E_INVALID_INPUT/);
  });
});

/** Stops the daemon `boocoder stdio` started in `home` (as e2e-stdio.test.ts does). */
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
    await delay(50);
  }
  process.kill(info.pid, 'SIGKILL');
}

describe('subscriptions over stdio (the bridge to the local daemon)', () => {
  const repos = tempRepos();
  let client: Client | undefined;
  let home: string | undefined;

  afterAll(async () => {
    await client?.close();
    if (home) {
      await stopDaemon(home);
      await rm(home, { recursive: true, force: true });
    }
    await repos.cleanup();
  });

  it('a subscriber to a task hears that it ended', async () => {
    const test = await testHome();
    home = test.home;
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'boocoder.js');
    client = new Client({ name: 'stdio-subscriber', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [bin, 'stdio'],
        env: test.env,
        stderr: 'pipe',
      }),
    );
    const seen = listen(client);
    const repo = await repos.repo();
    const { task_id } = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'sleep 3000\nwrite b.txt b',
    });
    await client.subscribeResource({ uri: `boocoder://tasks/${task_id}` });
    await seen.until(() => seen.updated.includes(`boocoder://tasks/${task_id}`));
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id, wait_s: 30 });
    expect(done.state).toBe('completed');
  }, 180_000);
});
