/**
 * The guards wired into the real server, driven with raw requests so every header is exactly
 * what an attacker would send. Each check runs on POST, GET and DELETE, not only POST.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { createEchoServer } from '../fixtures/echo-mcp-server.js';
import {
  initializeBody,
  MCP_POST_HEADERS,
  openRawSession,
  rawRequest,
} from '../fixtures/http-raw-request.js';

const TOKEN = 'a-test-token-that-is-long-enough-0123';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

let server: RunningHttpServer;
let sessionId: string;

beforeEach(async () => {
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    allowedOrigins: ['https://tools.example.com'],
    maxSessions: 10,
    sessionIdleMs: 60_000,
    logger: silentLogger,
    createMcpServer: createEchoServer,
  });
  sessionId = await openRawSession(server.port, AUTH);
});

afterEach(async () => {
  await server.close();
});

/** One request per method against the open session, with the given extra headers. */
async function eachMethod(headers: Record<string, string>) {
  const base = { ...MCP_POST_HEADERS, 'Mcp-Session-Id': sessionId, ...headers };
  return {
    POST: await rawRequest({
      port: server.port,
      method: 'POST',
      headers: base,
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    }),
    GET: await rawRequest({
      port: server.port,
      method: 'GET',
      headers: { ...base, Accept: 'text/event-stream' },
      headersOnly: true,
    }),
    DELETE: await rawRequest({ port: server.port, method: 'DELETE', headers: base }),
  };
}

describe('DNS rebinding', () => {
  it('refuses a foreign Host with 403 on POST, GET, DELETE and /healthz, even with the token', async () => {
    const host = { Host: `evil.example:${server.port}` };
    for (const [method, res] of Object.entries(await eachMethod({ ...AUTH, ...host }))) {
      expect(res.status, method).toBe(403);
    }
    const health = await rawRequest({ port: server.port, method: 'GET', path: '/healthz', headers: host });
    expect(health.status).toBe(403);
    expect(health.body).not.toContain(String(process.pid));
    expect(server.sessionCount()).toBe(1); // the refused DELETE did not end the session
  });

  it('refuses a foreign Host on initialize, so no session is created', async () => {
    const res = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, ...AUTH, Host: `rebind.evil.example:${server.port}` },
      body: initializeBody(),
    });
    expect(res.status).toBe(403);
    expect(server.sessionCount()).toBe(1);
  });

  it('refuses a request without a Host header', async () => {
    const res = await rawRequest({ port: server.port, method: 'GET', path: '/healthz', noHost: true });
    // Node's own parser answers 400 to an HTTP/1.1 request without Host; our guard would say 403.
    expect([400, 403]).toContain(res.status);
    expect(res.body).not.toContain(String(process.pid));
  });
});

describe('cross-site requests', () => {
  it('refuses a foreign Origin with 403 on POST, GET and DELETE, even with the token', async () => {
    for (const [method, res] of Object.entries(
      await eachMethod({ ...AUTH, Origin: 'https://evil.example' }),
    )) {
      expect(res.status, method).toBe(403);
      expect(res.headers['access-control-allow-origin'], method).toBeUndefined();
    }
    expect(server.sessionCount()).toBe(1);
  });

  it('refuses the opaque null origin of sandboxed frames and local files', async () => {
    const res = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, ...AUTH, Origin: 'null' },
      body: initializeBody(),
    });
    expect(res.status).toBe(403);
  });

  it('accepts a loopback origin on another port and a listed origin, with CORS headers for them', async () => {
    for (const origin of ['http://localhost:6274', 'https://tools.example.com']) {
      const res = await rawRequest({
        port: server.port,
        method: 'POST',
        headers: { ...MCP_POST_HEADERS, ...AUTH, Origin: origin },
        body: initializeBody(),
      });
      expect(res.status, origin).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
    }
  });

  it('answers a preflight from an accepted origin without a token, and refuses one from a foreign origin', async () => {
    const ok = await rawRequest({
      port: server.port,
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:6274' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-headers']).toMatch(/Mcp-Session-Id/);
    const bad = await rawRequest({
      port: server.port,
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example' },
    });
    expect(bad.status).toBe(403);
  });
});

describe('token', () => {
  const sameLength = `Bearer ${TOKEN.slice(0, -1)}4`;
  const cases: Record<string, Record<string, string>> = {
    missing: {},
    wrong: { Authorization: 'Bearer nope' },
    'wrong but same length': { Authorization: sameLength },
    'right token, wrong scheme': { Authorization: `Basic ${TOKEN}` },
  };

  for (const [name, headers] of Object.entries(cases)) {
    it(`refuses a ${name} token with 401 and WWW-Authenticate on POST, GET and DELETE`, async () => {
      for (const [method, res] of Object.entries(await eachMethod(headers))) {
        expect(res.status, method).toBe(401);
        expect(res.headers['www-authenticate'], method).toMatch(/^Bearer/);
        expect(res.body, method).not.toContain(TOKEN);
      }
      expect(server.sessionCount()).toBe(1);
    });
  }

  it('refuses initialize without the token, so no session is created', async () => {
    const res = await rawRequest({
      port: server.port,
      method: 'POST',
      headers: MCP_POST_HEADERS,
      body: initializeBody(),
    });
    expect(res.status).toBe(401);
    expect(server.sessionCount()).toBe(1);
  });

  it('accepts the right token on POST, GET and DELETE', async () => {
    const res = await eachMethod(AUTH);
    expect(res.POST.status).toBe(200);
    expect(res.GET.status).toBe(200);
    expect(res.GET.headers['content-type']).toMatch(/text\/event-stream/);
    expect(res.DELETE.status).toBe(200);
    expect(server.sessionCount()).toBe(0);
  });
});

describe('exposure', () => {
  it('refuses to start on a non-loopback address without a token', async () => {
    const attempt = startHttpServer({
      host: '0.0.0.0',
      port: 0,
      allowedOrigins: [],
      maxSessions: 1,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: createEchoServer,
    });
    const error = await attempt.catch((e: unknown) => e);
    expect(isBoocoderError(error, 'E_CONFIG')).toBe(true);
  });
});
