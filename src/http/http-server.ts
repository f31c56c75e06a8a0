/**
 * The streamable-HTTP MCP endpoint on plain node:http: `/mcp` (POST, GET for the SSE stream,
 * DELETE to end a session) and `/healthz` (how the stdio bridge recognises a live daemon).
 * Every request passes the Host, Origin and token guards first (see guards.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  allowedHostHeaders,
  assertSafeBind,
  bearerToken,
  bracketIpv6,
  checkRequest,
  type GuardPolicy,
  isWildcardHost,
  normaliseOrigin,
  tokensEqual,
} from './guards.js';
import {
  containsInitialize,
  containsWorkRequest,
  header,
  readJsonBody,
  sendJson,
  sendRpcError,
} from './http-io.js';
import { createSessionRegistry, type HttpSession, type SessionRegistry } from './session-registry.js';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  token?: string;
  /** Browser origins allowed besides loopback ones, e.g. `https://tools.example.com`. */
  allowedOrigins: readonly string[];
  maxSessions: number;
  sessionIdleMs: number;
  /** The idle time of a session that never sent a request after initialize (default: sessionIdleMs). */
  unusedSessionIdleMs?: number;
  /** True while a session's server has a live resource subscription: never evicted when full. */
  hasSubscriptions?: (server: McpServer) => boolean;
  maxBodyBytes?: number;
  logger: Logger;
  createMcpServer: () => McpServer;
  /**
   * Resolves a bearer token that is not the daemon's own: a grant (a credential scoped to one task,
   * whose connections get only its own tools), 'refused' (such a credential, but no longer valid),
   * or undefined (not one).
   */
  scopedCredential?: (token: string) => Promise<ScopedGrant | 'refused' | undefined>;
}

export interface ScopedGrant {
  /** Binds sessions to the credential: a session opened under it answers no other credential. */
  principal: string;
  createMcpServer: () => McpServer;
}

export interface RunningHttpServer {
  /** The MCP endpoint, e.g. `http://127.0.0.1:7311/mcp` (a loopback address for wildcard binds). */
  url: string;
  port: number;
  close(): Promise<void>;
  sessionCount(): number;
}

const ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS';

/** The machine's own names, accepted in Host only when bound to a wildcard address. */
function machineNames(): string[] {
  const names = [hostname()];
  for (const list of Object.values(networkInterfaces())) {
    for (const addr of list ?? []) names.push(addr.address);
  }
  return names;
}

function parseAllowedOrigins(origins: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const origin of origins) {
    const normal = normaliseOrigin(origin);
    if (normal === undefined) {
      throw new BoocoderError(
        'E_CONFIG',
        `allowed origin "${origin}" is not an http(s)://host[:port] origin`,
      );
    }
    out.add(normal);
  }
  return out;
}

/** Lets a browser page on an accepted origin read our answers (the guards already vetted Origin). */
function applyCors(req: IncomingMessage, res: ServerResponse): void {
  const origin = header(req, 'origin');
  if (origin === undefined) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Vary', 'Origin');
  res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, WWW-Authenticate');
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, token, logger } = options;
  assertSafeBind(host, token);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const policy: GuardPolicy = {
    allowedHosts: new Set(),
    allowedOrigins: parseAllowedOrigins(options.allowedOrigins),
    token,
  };
  const sessions: SessionRegistry = createSessionRegistry({
    maxSessions: options.maxSessions,
    sessionIdleMs: options.sessionIdleMs,
    unusedSessionIdleMs: options.unusedSessionIdleMs,
    hasSubscriptions: options.hasSubscriptions,
    createMcpServer: options.createMcpServer,
    logger,
  });

  /** A session answers only the credential that opened it (a scoped token cannot ride a full session). */
  const sessionFor = (id: string, grant: ScopedGrant | undefined): HttpSession | undefined => {
    const session = sessions.get(id);
    return session && session.principal === (grant?.principal ?? '') ? session : undefined;
  };

  const scopedGrant = async (authorization: string | undefined) => {
    const given = bearerToken(authorization);
    if (given === undefined || !options.scopedCredential) return undefined;
    // The daemon's own token is never looked up as a scoped one.
    if (token !== undefined && tokensEqual(given, token)) return undefined;
    return options.scopedCredential(given);
  };

  const handleSessionRequest = async (
    req: IncomingMessage,
    res: ServerResponse,
    session: HttpSession,
    body?: unknown,
  ) => {
    sessions.track(session, res, req.method === 'GET' ? 'stream' : 'request');
    if (containsWorkRequest(body)) sessions.markUsed(session);
    await session.transport.handleRequest(req, res, body);
  };

  const handlePost = async (req: IncomingMessage, res: ServerResponse, grant: ScopedGrant | undefined) => {
    const body = await readJsonBody(req, maxBodyBytes);
    if (body.kind === 'too-large') {
      // Close the connection: the rest of the oversized body is never read.
      sendRpcError(res, 413, -32000, `request body exceeds ${maxBodyBytes} bytes`, { Connection: 'close' });
      return;
    }
    if (body.kind === 'invalid-json') {
      sendRpcError(res, 400, -32700, 'parse error: the request body is not valid JSON');
      return;
    }
    const sessionId = header(req, 'mcp-session-id');
    if (sessionId !== undefined) {
      const session = sessionFor(sessionId, grant);
      if (!session) {
        sendRpcError(res, 404, -32001, 'session not found; start a new session with initialize');
        return;
      }
      await handleSessionRequest(req, res, session, body.value);
      return;
    }
    if (!containsInitialize(body.value)) {
      sendRpcError(res, 400, -32000, 'bad request: no Mcp-Session-Id header; send initialize first');
      return;
    }
    const session = await sessions.open(grant?.principal, grant?.createMcpServer);
    if (!session) {
      logger.warn('http session refused: too many sessions', { maxSessions: options.maxSessions });
      sendRpcError(res, 503, -32000, 'too many sessions with requests in flight; retry in a moment');
      return;
    }
    await handleSessionRequest(req, res, session, body.value);
    // The transport refused the initialize (bad Accept header, malformed request...): free the slot.
    if (session.id === undefined) await sessions.close(session, 'initialize failed');
  };

  const handleMcp = async (req: IncomingMessage, res: ServerResponse, grant: ScopedGrant | undefined) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, POST, DELETE',
        'Access-Control-Allow-Headers':
          'Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    if (req.method === 'POST') return handlePost(req, res, grant);
    if (req.method === 'GET' || req.method === 'DELETE') {
      const sessionId = header(req, 'mcp-session-id');
      if (sessionId === undefined) {
        sendRpcError(res, 400, -32000, 'bad request: the Mcp-Session-Id header is required');
        return;
      }
      const session = sessionFor(sessionId, grant);
      if (!session) {
        sendRpcError(res, 404, -32001, 'session not found; start a new session with initialize');
        return;
      }
      return handleSessionRequest(req, res, session);
    }
    sendRpcError(res, 405, -32000, 'method not allowed', { Allow: ALLOWED_METHODS });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://placeholder').pathname;
    // /healthz needs no token (it reveals only a pid) and a preflight never carries one.
    const skipToken = path === '/healthz' || req.method === 'OPTIONS';
    const grant = skipToken ? undefined : await scopedGrant(header(req, 'authorization'));
    if (grant === 'refused') {
      applyCors(req, res);
      sendRpcError(
        res,
        401,
        -32000,
        'unauthorized: this scoped credential is no longer valid (its task ended)',
        {
          'WWW-Authenticate': 'Bearer realm="boocoder"',
        },
      );
      return;
    }
    const verdict = checkRequest(
      {
        host: header(req, 'host'),
        origin: header(req, 'origin'),
        authorization: header(req, 'authorization'),
      },
      policy,
      // Host and Origin are still checked for a scoped credential; it replaces only the token check.
      { skipToken: skipToken || grant !== undefined },
    );
    if (!verdict.ok) {
      logger.debug('http request refused', { status: verdict.status, method: req.method, path });
      if (verdict.status === 401) applyCors(req, res);
      sendRpcError(res, verdict.status, -32000, verdict.message, verdict.headers);
      return;
    }
    applyCors(req, res);
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendRpcError(res, 405, -32000, 'method not allowed', { Allow: 'GET, HEAD' });
        return;
      }
      sendJson(
        res,
        200,
        { ok: true, service: 'boocoder', pid: process.pid },
        { 'Cache-Control': 'no-store' },
      );
      return;
    }
    if (path !== '/mcp') {
      sendRpcError(res, 404, -32000, 'not found: the MCP endpoint is /mcp');
      return;
    }
    await handleMcp(req, res, grant);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger.error('http request failed', { err, method: req.method });
      if (!res.headersSent) sendRpcError(res, 500, -32603, 'internal error; the server log has the details');
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new BoocoderError(
          'E_CONFIG',
          `cannot listen on ${host}:${options.port} (${err.code ?? err.message}); choose another BOOCODER_PORT or stop the other process`,
          {},
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error('http server error', { err }));

  const port = (server.address() as AddressInfo).port;
  policy.allowedHosts = allowedHostHeaders(host, port, isWildcardHost(host) ? machineNames() : []);
  const urlHost = isWildcardHost(host) ? (host === '0.0.0.0' ? '127.0.0.1' : '[::1]') : bracketIpv6(host);
  const url = `http://${urlHost}:${port}/mcp`;
  const stopReaper = sessions.startReaper();
  logger.info('http endpoint listening', { url, tokenRequired: token !== undefined });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    sessionCount: () => sessions.size(),
    close: () => {
      closing ??= (async () => {
        stopReaper();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await sessions.closeAll();
        // SSE streams and keep-alive sockets would otherwise hold close() open indefinitely.
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
