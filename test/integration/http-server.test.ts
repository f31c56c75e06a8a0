import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ListRootsRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type HttpServerOptions,
  type RunningHttpServer,
  startHttpServer,
} from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { createEchoServer, type EchoResult } from '../fixtures/echo-mcp-server.js';
import {
  initializeBody,
  MCP_POST_HEADERS,
  openRawSession,
  rawRequest,
} from '../fixtures/http-raw-request.js';

const servers: RunningHttpServer[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<HttpServerOptions> = {}): Promise<RunningHttpServer> {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    allowedOrigins: [],
    maxSessions: 10,
    sessionIdleMs: 60_000,
    logger: silentLogger,
    createMcpServer: createEchoServer,
    ...overrides,
  });
  servers.push(server);
  return server;
}

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  logs: unknown[];
}

async function connect(url: string, roots: string[] = ['file:///work/a']): Promise<Connected> {
  const client = new Client({ name: 'test', version: '1.0.0' }, { capabilities: { roots: {} } });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: roots.map((uri) => ({ uri })) }));
  const logs: unknown[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(n.params.data);
  });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  clients.push(client);
  return { client, transport, logs };
}

function echoResult(result: Awaited<ReturnType<Client['callTool']>>): EchoResult {
  const first = (result.content as Array<{ type: string; text?: string }>)[0];
  return JSON.parse(first?.text ?? 'null') as EchoResult;
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

describe('streamable HTTP endpoint', () => {
  it('serves initialize, tools/list and tools/call with progress and a server→client roots/list', async () => {
    const server = await start();
    const { client } = await connect(server.url, ['file:///work/project']);
    expect(client.getServerVersion()?.name).toBe('echo-test');
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(['echo']);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'echo', arguments: { text: 'hi', askRoots: true } },
      undefined,
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    expect(echoResult(result)).toEqual({ text: 'hi', roots: ['file:///work/project'], pid: process.pid });
    expect(progress).toEqual([1, 2, 3]);
    expect(server.sessionCount()).toBe(1);
  });

  it('keeps concurrent sessions apart: each sees only its own notifications and roots', async () => {
    const server = await start();
    const a = await connect(server.url, ['file:///a']);
    const b = await connect(server.url, ['file:///b']);
    const progressA: string[] = [];
    const progressB: string[] = [];
    const [ra, rb] = await Promise.all([
      a.client.callTool({ name: 'echo', arguments: { text: 'from-A', askRoots: true } }, undefined, {
        onprogress: (p) => progressA.push(p.message ?? ''),
      }),
      b.client.callTool({ name: 'echo', arguments: { text: 'from-B', askRoots: true } }, undefined, {
        onprogress: (p) => progressB.push(p.message ?? ''),
      }),
    ]);
    expect(echoResult(ra).roots).toEqual(['file:///a']);
    expect(echoResult(rb).roots).toEqual(['file:///b']);
    expect(a.logs).toEqual(['echo:from-A']);
    expect(b.logs).toEqual(['echo:from-B']);
    expect(progressA).toEqual(['from-A', 'from-A', 'from-A']);
    expect(progressB).toEqual(['from-B', 'from-B', 'from-B']);
    expect(server.sessionCount()).toBe(2);
  });

  it('ends a session on DELETE', async () => {
    const server = await start();
    const { transport } = await connect(server.url);
    const sessionId = transport.sessionId as string;
    await transport.terminateSession();
    expect(server.sessionCount()).toBe(0);
    const after = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
  });

  it('reaps a session whose client vanished without DELETE', async () => {
    const server = await start({ sessionIdleMs: 150 });
    const { client, transport } = await connect(server.url);
    const sessionId = transport.sessionId as string;
    await client.listTools();
    // close() aborts the client's streams without sending DELETE, like a client that crashed.
    await client.close();
    await waitFor(() => server.sessionCount() === 0);
    const after = await rawRequest({
      port: server.port,
      method: 'GET',
      headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId },
    });
    expect(after.status).toBe(404);
  });

  it('does not reap a session while its client keeps an SSE stream open', async () => {
    const server = await start({ sessionIdleMs: 100 });
    const idle = await connect(server.url);
    const vanished = await connect(server.url);
    await vanished.client.close();
    // Once the vanished client's session is reaped, several sweeps have run past the idle time.
    await waitFor(() => server.sessionCount() === 1);
    const result = await idle.client.callTool({ name: 'echo', arguments: { text: 'still here' } });
    expect(echoResult(result).text).toBe('still here');
  });

  it('refuses a body over maxBodyBytes with 413, declared or streamed, and accepts one under it', async () => {
    const server = await start({ maxBodyBytes: 1024 });
    const big = JSON.stringify({ ...JSON.parse(initializeBody()), padding: 'x'.repeat(2000) });
    const declared = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: big,
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.code).toBe(-32000);
    const streamed = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: big,
      chunked: true,
    });
    expect(streamed.status).toBe(413);
    expect(server.sessionCount()).toBe(0);
    await openRawSession(server.port);
    expect(server.sessionCount()).toBe(1);
  });

  it('answers 400 to a non-initialize POST without a session and to invalid JSON, 404 to unknown sessions', async () => {
    const server = await start();
    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const noSession = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: list,
    });
    expect(noSession.status).toBe(400);
    const badJson = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: '{"jsonrpc":',
    });
    expect(badJson.status).toBe(400);
    expect(JSON.parse(badJson.body).error.code).toBe(-32700);
    const unknown = { 'Mcp-Session-Id': '00000000-0000-4000-8000-000000000000' };
    for (const method of ['POST', 'GET', 'DELETE']) {
      const res = await rawRequest({
        port: server.port,
        method,
        headers: { ...MCP_POST_HEADERS, ...unknown },
        body: method === 'POST' ? list : undefined,
      });
      expect(res.status, method).toBe(404);
    }
    const getWithout = await rawRequest({
      port: server.port,
      method: 'GET',
      headers: { Accept: 'text/event-stream' },
    });
    expect(getWithout.status).toBe(400);
    const put = await rawRequest({ port: server.port, method: 'PUT', headers: MCP_POST_HEADERS, body: list });
    expect(put.status).toBe(405);
    const elsewhere = await rawRequest({ port: server.port, method: 'GET', path: '/other' });
    expect(elsewhere.status).toBe(404);
    expect(server.sessionCount()).toBe(0);
  });

  it('serves /healthz without a token, naming the service and its pid', async () => {
    const server = await start({ token: 'a-long-enough-test-token-0123456789' });
    const res = await rawRequest({ port: server.port, method: 'GET', path: '/healthz' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: true, service: 'boocoder', pid: process.pid });
  });

  it('closes open sessions and their SSE streams on close()', async () => {
    const server = await start();
    const { client } = await connect(server.url);
    // The client holds a GET SSE stream open: close() must end it rather than wait for it.
    await server.close();
    expect(server.sessionCount()).toBe(0);
    await expect(client.listTools()).rejects.toThrow();
  });
});
