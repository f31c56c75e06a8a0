/**
 * The daemon's MCP socket and the stdio bridge that pipes to it: only the owner can connect, the
 * bridge connects to nothing but a boocoder socket in the home, and a hostile client can neither
 * exhaust sessions nor make the daemon buffer an endless line.
 */

import { mkdir, mkdtemp, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSocketBridge } from '../../src/bridge/socket-bridge.js';
import { daemonSocketPath, type SocketServer, startSocketServer } from '../../src/bridge/socket-server.js';
import { isBoocoderError } from '../../src/errors.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { createEchoServer } from '../fixtures/echo-mcp-server.js';
import { StreamPairTransport } from '../helpers/stream-pair-transport.js';

let home: string;
let server: SocketServer | undefined;

beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-socket-')));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(home, { recursive: true, force: true });
});

async function startServer(maxSessions = 4): Promise<SocketServer> {
  const path = daemonSocketPath(home, process.pid) as string;
  server = await startSocketServer({
    path,
    home,
    maxSessions,
    logger: silentLogger,
    createMcpServer: createEchoServer,
  });
  return server;
}

function bridge(socketPath: string) {
  const toBridge = new PassThrough();
  const fromBridge = new PassThrough();
  const done = runSocketBridge({
    socketPath,
    home,
    stdin: toBridge,
    stdout: fromBridge,
    logger: silentLogger,
  });
  return { done, transport: new StreamPairTransport(fromBridge, toBridge) };
}

/** Everything the daemon sends on a raw connection until it closes it. */
function rawExchange(path: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let received = '';
    socket.on('data', (c: Buffer) => {
      received += c.toString('utf8');
    });
    socket.once('error', reject);
    socket.once('close', () => resolve(received));
    socket.once('connect', () => socket.write(payload));
  });
}

describe('the daemon MCP socket', () => {
  it('is a 0600 socket in the home, and a bridged client gets tool calls answered through it', async () => {
    const s = await startServer();
    expect((await stat(s.path)).mode & 0o777).toBe(0o600);
    const { done, transport } = bridge(s.path);
    const client = new Client({ name: 'socket-test', version: '1.0.0' });
    await client.connect(transport);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'over the socket' } });
    expect(JSON.stringify(result.content)).toContain('over the socket');
    await client.close();
    await expect(done).resolves.toBeUndefined();
  });

  it('refuses a session past the maximum with a JSON-RPC error, and serves again once one closes', async () => {
    const s = await startServer(1);
    const first = bridge(s.path);
    const client = new Client({ name: 'socket-test', version: '1.0.0' });
    await client.connect(first.transport);
    const refused = await rawExchange(s.path, '');
    expect(JSON.parse(refused).error.message).toMatch(/too many MCP sessions \(1\)/);
    await client.close();
    await first.done;
    const again = bridge(s.path);
    const next = new Client({ name: 'socket-test', version: '1.0.0' });
    await next.connect(again.transport);
    await next.close();
    await again.done;
  });

  it('answers a line longer than the body limit with an error for its id, without buffering it, and keeps the session', async () => {
    const s = await startServer();
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
      params: { flood: 'x'.repeat(DEFAULT_MAX_BODY_BYTES + 1024) },
    });
    const replies = await new Promise<Array<{ id: number; error?: { message: string }; result?: unknown }>>(
      (resolve, reject) => {
        const socket = connect(s.path);
        let received = '';
        socket.on('data', (c: Buffer) => {
          received += c.toString('utf8');
          const lines = received.split('\n').filter(Boolean);
          if (lines.length < 2) return;
          socket.destroy();
          resolve(lines.map((l) => JSON.parse(l)));
        });
        socket.once('error', reject);
        socket.once('connect', () =>
          socket.write(`${big}\n${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' })}\n`),
        );
      },
    );
    expect(replies[0]?.id).toBe(1);
    expect(replies[0]?.error?.message).toMatch(/^E_INVALID_INPUT: the message is 4\.0 MiB/);
    expect(replies[1]).toMatchObject({ id: 2, result: {} });
  });

  it('removes a stale socket left by a dead daemon when it starts', async () => {
    const stale = join(home, 'mcp-999999999.sock');
    await writeFile(stale, '');
    await startServer();
    await expect(stat(stale)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the socket bridge', () => {
  const refusal = async (socketPath: string) => {
    const err = await bridge(socketPath).done.catch((e: unknown) => e);
    expect(isBoocoderError(err, 'E_DAEMON_UNAVAILABLE')).toBe(true);
    return err as Error;
  };

  it('refuses a socket outside the home (a daemon.json edited to point at another process)', async () => {
    const elsewhere = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-socket-other-')));
    try {
      const path = daemonSocketPath(elsewhere, process.pid) as string;
      const other = await startSocketServer({
        path,
        home: elsewhere,
        maxSessions: 1,
        logger: silentLogger,
        createMcpServer: createEchoServer,
      });
      try {
        const err = await refusal(path);
        expect(err.message).not.toContain(elsewhere);
      } finally {
        await other.close();
      }
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a regular file or a directory under a socket name, and a name boocoder never gives', async () => {
    await writeFile(join(home, 'mcp-1.sock'), '');
    await refusal(join(home, 'mcp-1.sock'));
    await mkdir(join(home, 'mcp-2.sock'));
    await refusal(join(home, 'mcp-2.sock'));
    const s = await startServer();
    await refusal(join(home, '..', home.split('/').pop() as string, 'other.sock'));
    expect(s.path).toMatch(/mcp-\d+\.sock$/);
  });

  it('rejects with E_DAEMON_UNAVAILABLE when the daemon closes the socket first', async () => {
    const s = await startServer();
    const { done, transport } = bridge(s.path);
    const client = new Client({ name: 'socket-test', version: '1.0.0' });
    await client.connect(transport);
    const outcome = done.catch((e: unknown) => e);
    await s.close();
    server = undefined;
    const err = await outcome;
    expect(isBoocoderError(err, 'E_DAEMON_UNAVAILABLE')).toBe(true);
    await client.close();
  });
});
