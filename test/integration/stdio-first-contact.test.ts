/**
 * The real `boocoder stdio` on a fresh home, started while the daemon cannot come up yet (the
 * test holds the start lock, as a slow first start would): `initialize` and `tools/list` are
 * answered at once, with exactly the daemon's tool list; a tool call is held until the daemon is
 * up and then answered; an oversized message gets an error for its id and the session goes on.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import { START_LOCK_FILE } from '../../src/bridge/start-lock.js';
import { testHome } from '../helpers/boocoder-app.js';
import { BOOCODER_BIN, cleanUpAll, stopDaemonsAndRemove } from '../helpers/clients.js';

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('boocoder stdio before its daemon is up', () => {
  const clients: Client[] = [];
  let home: string | undefined;

  afterAll(() =>
    cleanUpAll([
      ...clients.map((c) => () => c.close()),
      () => (home ? stopDaemonsAndRemove(home) : undefined),
    ]),
  );

  it('answers initialize and tools/list itself, holds a tool call until the daemon is up, and refuses an oversized message without losing the session', async () => {
    const t = await testHome({ BOOCODER_PORT: '0' });
    home = t.home;
    // A live holder of the start lock (this test process): the bridge waits for it, as it waits
    // for a daemon another client is starting.
    const lock = join(home, START_LOCK_FILE);
    await writeFile(lock, JSON.stringify({ pid: process.pid, nonce: randomUUID(), createdAt: Date.now() }));

    const client = new Client({ name: 'first-contact', version: '1.0.0' });
    clients.push(client);
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BOOCODER_BIN, 'stdio'],
        env: t.env,
        stderr: 'pipe',
      }),
    );
    expect(client.getServerVersion()?.name).toBe('boocoder');
    expect(client.getInstructions()).toContain('new_task');
    const early = await client.listTools();
    expect(early.tools.map((tool) => tool.name)).toContain('new_task');
    // Answered with no daemon at all: none was started while the lock is held.
    expect(await exists(join(home, 'daemon.json'))).toBe(false);

    const held = client.callTool({ name: 'list_tasks', arguments: {} }, undefined, { timeout: 170_000 });

    const huge = 'x'.repeat(5 * 1024 * 1024);
    const refused = await client.callTool({ name: 'new_task', arguments: { input: huge } }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(refused?.message).toMatch(
      /E_INVALID_INPUT: the message is 5\.0 MiB, over boocoder's 4\.0 MiB limit/,
    );
    expect((await client.listTools()).tools).toHaveLength(early.tools.length);

    await rm(lock);
    const result = await held;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ tasks: [], next_cursor: null });

    // The list answered before the daemon existed is the daemon's own, to the byte.
    const info = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as {
      url: string;
      version?: string;
    };
    expect(info.version).toBe(client.getServerVersion()?.version);
    const direct = new Client({ name: 'direct', version: '1.0.0' });
    clients.push(direct);
    await direct.connect(new StreamableHTTPClientTransport(new URL(info.url)));
    expect(early).toEqual(await direct.listTools());

    // After the daemon is up the session still refuses oversized messages and goes on.
    const again = await client.callTool({ name: 'new_task', arguments: { input: huge } }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(again?.message).toMatch(/E_INVALID_INPUT/);
    expect((await client.callTool({ name: 'list_tasks', arguments: {} })).isError).toBeFalsy();
  }, 240_000);

  it('lets a daemon of another version answer everything itself, and says how to move to this one', async () => {
    const t = await testHome({ BOOCODER_PORT: '0', BOOCODER_LOG_LEVEL: 'info' });
    const otherHome = t.home;
    // An older daemon, as far as this build can tell: another version, a live pid (this process).
    await writeFile(
      join(otherHome, 'daemon.json'),
      JSON.stringify({
        pid: process.pid,
        url: 'http://127.0.0.1:9/mcp',
        startedAt: new Date().toISOString(),
        version: '0.0.1',
      }),
      { mode: 0o600 },
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BOOCODER_BIN, 'stdio'],
      env: t.env,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const client = new Client({ name: 'other-version', version: '1.0.0' });
    clients.push(client);
    try {
      await client.connect(transport, { timeout: 170_000 });
      expect(stderr).toContain('a boocoder daemon of another version is running on this home');
      expect(stderr).toContain('`boocoder stop`');
      // That "daemon" never answered /healthz, so a daemon of this version was started for the home.
      const info = JSON.parse(await readFile(join(otherHome, 'daemon.json'), 'utf8')) as { version?: string };
      expect(info.version).toBe(client.getServerVersion()?.version);
    } finally {
      await client.close();
      await stopDaemonsAndRemove(otherHome);
    }
  }, 240_000);
});
