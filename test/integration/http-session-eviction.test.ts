/**
 * A full HTTP endpoint makes room for a new client: abandoned sessions holding a GET event stream
 * are evicted, least recently active first, but never a session with a request in flight or a live
 * resource subscription; a session that never sent a request after initialize is reaped sooner.
 */
import { type ClientRequest, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type HttpServerOptions,
  type RunningHttpServer,
  startHttpServer,
} from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { createEchoServer } from '../fixtures/echo-mcp-server.js';
import {
  initializeBody,
  MCP_POST_HEADERS,
  openRawSession,
  rawRequest,
} from '../fixtures/http-raw-request.js';

const servers: RunningHttpServer[] = [];
const clients: Client[] = [];
const streams: ClientRequest[] = [];

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
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

/** Opens the session's GET event stream and leaves it open, as an abandoned client's would stay. */
function holdEventStream(port: number, sessionId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'GET',
        path: '/mcp',
        headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId },
        agent: false,
      },
      (res) => {
        if (res.statusCode === 200) resolve();
        else reject(new Error(`GET stream answered ${res.statusCode}`));
      },
    );
    req.on('error', () => {}); // destroyed at the end of the test
    streams.push(req);
    req.end();
  });
}

/** A client whose roots/list answer waits for release(): its echo(askRoots) call stays in flight. */
async function clientWithHeldRoots(url: string) {
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const client = new Client({ name: 'held', version: '1.0.0' }, { capabilities: { roots: {} } });
  let asked = () => {};
  const askedP = new Promise<void>((r) => {
    asked = r;
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked();
    await held;
    return { roots: [] };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  clients.push(client);
  const call = client.callTool({ name: 'echo', arguments: { text: 'held', askRoots: true } });
  await askedP;
  return { client, call, release };
}

async function connect(url: string): Promise<Client> {
  const client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  clients.push(client);
  return client;
}

const sessionAnswers = async (port: number, sessionId: string) =>
  (
    await rawRequest({
      port,
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, 'Mcp-Session-Id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    })
  ).status;

describe('a full HTTP endpoint', () => {
  it('lets a new client in past 100 sessions that hold GET event streams, evicting the oldest', async () => {
    const server = await start({ maxSessions: 100 });
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const id = await openRawSession(server.port);
      await holdEventStream(server.port, id);
      ids.push(id);
    }
    expect(server.sessionCount()).toBe(100);
    const client = await connect(server.url);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect(server.sessionCount()).toBe(100);
    expect(await sessionAnswers(server.port, ids[0] as string)).toBe(404);
    expect(await sessionAnswers(server.port, ids[99] as string)).toBe(200);
  });

  it('never evicts a session with a request in flight: 503 while there is no other, its call completes', async () => {
    const server = await start({ maxSessions: 1 });
    const held = await clientWithHeldRoots(server.url);
    const refused = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: initializeBody(),
    });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 }, id: null });
    const error = await new Client({ name: 'second', version: '1.0.0' })
      .connect(new StreamableHTTPClientTransport(new URL(server.url)))
      .catch((e) => e);
    expect(error).toBeInstanceOf(StreamableHTTPError);
    expect((error as StreamableHTTPError).code).toBe(503);
    held.release();
    expect((await held.call).isError).toBeFalsy();
    // Its call answered, the session may now make room.
    await connect(server.url);
    expect(server.sessionCount()).toBe(1);
  });

  it('evicts an idle newer session rather than an older one with a request in flight', async () => {
    const server = await start({ maxSessions: 2 });
    const held = await clientWithHeldRoots(server.url);
    const idle = await openRawSession(server.port);
    await holdEventStream(server.port, idle);
    await connect(server.url);
    expect(await sessionAnswers(server.port, idle)).toBe(404);
    held.release();
    expect((await held.call).isError).toBeFalsy();
  });

  it('never evicts a session with a live resource subscription', async () => {
    const subscribed = new WeakSet<McpServer>();
    let next = true;
    const server = await start({
      maxSessions: 1,
      hasSubscriptions: (s) => subscribed.has(s),
      createMcpServer: () => {
        const s = createEchoServer();
        if (next) subscribed.add(s);
        next = false;
        return s;
      },
    });
    const listener = await openRawSession(server.port);
    await holdEventStream(server.port, listener);
    const refused = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: initializeBody(),
    });
    expect(refused.status).toBe(503);
    expect(await sessionAnswers(server.port, listener)).toBe(200);
  });

  it('reaps a session that never sent a request after initialize sooner than a used one', async () => {
    const server = await start({ sessionIdleMs: 3_600_000, unusedSessionIdleMs: 1000 });
    const unused = await openRawSession(server.port);
    const used = await openRawSession(server.port);
    expect(await sessionAnswers(server.port, used)).toBe(200);
    while (server.sessionCount() > 1) await sleep(50);
    expect(await sessionAnswers(server.port, used)).toBe(200);
    expect(await sessionAnswers(server.port, unused)).toBe(404);
  });
});
