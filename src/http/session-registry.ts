/**
 * The HTTP endpoint's sessions: one McpServer and one transport per client session, a bound on
 * how many exist, and reaping of sessions whose client went away without a DELETE.
 *
 * A full registry evicts rather than refuses: clients that went away while holding a GET event
 * stream open (the socket lingers until TCP notices) would otherwise lock every new client out.
 * The least recently active session goes, but never one with a request in flight (its caller is
 * waiting for the answer) nor one with a live resource subscription (its client is listening).
 *
 * A fresh McpServer per session is deliberate: one server shared across transports sent one
 * client's responses and notifications to another (GHSA-345p-7cg4-v4c7).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Logger } from '../log.js';

export interface HttpSession {
  /** Set once the transport has answered `initialize`; until then the session only holds a slot. */
  id?: string;
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  /** Responses still open (a running request, a listening SSE stream): such a session is not idle. */
  open: number;
  /** Of those, requests (POST, DELETE) still being answered: such a session is never evicted. */
  inFlight: number;
  /** True once the client sent a request other than initialize (notifications do not count). */
  used: boolean;
  lastActive: number;
  closed: boolean;
  /** Who opened it: '' for the daemon's own token, else a scoped credential's principal (a task id). */
  readonly principal: string;
}

/** What a response on a session is: a request being answered, or a GET event stream. */
export type ResponseKind = 'request' | 'stream';

export interface SessionRegistryOptions {
  maxSessions: number;
  sessionIdleMs: number;
  /** The idle time of a session that never sent a request after initialize (default: sessionIdleMs). */
  unusedSessionIdleMs?: number;
  /** True while the session's server has a live resource subscription: it is then never evicted. */
  hasSubscriptions?: (server: McpServer) => boolean;
  createMcpServer: () => McpServer;
  logger: Logger;
  now?: () => number;
}

export interface SessionRegistry {
  get(id: string): HttpSession | undefined;
  /**
   * Opens a session slot for an `initialize` request, evicting the least recently active evictable
   * session when maxSessions are open; undefined when none can be evicted.
   */
  open(principal?: string, createServer?: () => McpServer): Promise<HttpSession | undefined>;
  /** Counts `res` as activity on the session until it closes. */
  track(session: HttpSession, res: ServerResponse, kind: ResponseKind): void;
  /** Records that the client sent a request beyond initialize: it earns the full idle time. */
  markUsed(session: HttpSession): void;
  close(session: HttpSession, reason: string): Promise<void>;
  closeIdle(): Promise<number>;
  closeAll(): Promise<void>;
  size(): number;
  /** Starts the periodic idle sweep; returns the function that stops it. */
  startReaper(): () => void;
}

export function createSessionRegistry(options: SessionRegistryOptions): SessionRegistry {
  const { maxSessions, sessionIdleMs, createMcpServer, logger } = options;
  const unusedIdleMs = Math.min(options.unusedSessionIdleMs ?? sessionIdleMs, sessionIdleMs);
  const hasSubscriptions = options.hasSubscriptions ?? (() => false);
  const now = options.now ?? Date.now;
  // Every session, initialised or not, counts against maxSessions: counting only initialised
  // ones would let a burst of concurrent initialize requests overshoot the bound.
  const all = new Set<HttpSession>();
  const byId = new Map<string, HttpSession>();

  const forget = (session: HttpSession) => {
    all.delete(session);
    if (session.id !== undefined && byId.get(session.id) === session) byId.delete(session.id);
  };

  const close = async (session: HttpSession, reason: string) => {
    if (session.closed) return;
    session.closed = true;
    forget(session);
    logger.debug('http session closed', { sessionId: session.id, reason });
    try {
      // Closing the server closes its transport, which ends the session's open SSE streams.
      await session.server.close();
    } catch (err) {
      logger.warn('closing an http session failed', { sessionId: session.id, err });
    }
  };

  /** The least recently active session that may be evicted, if any. */
  const evictable = (): HttpSession | undefined => {
    let oldest: HttpSession | undefined;
    for (const s of all) {
      // Uninitialised sessions have their initialize in flight, so they are skipped here too.
      if (s.inFlight > 0 || hasSubscriptions(s.server)) continue;
      if (!oldest || s.lastActive < oldest.lastActive) oldest = s;
    }
    return oldest;
  };

  const open = async (principal = '', createServer = createMcpServer): Promise<HttpSession | undefined> => {
    while (all.size >= maxSessions) {
      const victim = evictable();
      if (!victim) return undefined;
      logger.info('http session evicted to make room for a new client', { sessionId: victim.id });
      await close(victim, 'evicted');
    }
    const server = createServer();
    const session: HttpSession = {
      server,
      principal,
      open: 0,
      inFlight: 0,
      used: false,
      lastActive: now(),
      closed: false,
      transport: new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          session.id = id;
          byId.set(id, session);
          logger.debug('http session opened', { sessionId: id });
        },
      }),
    };
    // A DELETE from the client, or the server closing, ends here: drop the session at once.
    session.transport.onclose = () => {
      void close(session, 'transport closed');
    };
    all.add(session);
    try {
      await server.connect(session.transport);
    } catch (err) {
      await close(session, 'connect failed');
      throw err;
    }
    return session;
  };

  const track = (session: HttpSession, res: ServerResponse, kind: ResponseKind) => {
    const request = kind === 'request' ? 1 : 0;
    session.open += 1;
    session.inFlight += request;
    session.lastActive = now();
    res.once('close', () => {
      session.open -= 1;
      session.inFlight -= request;
      session.lastActive = now();
    });
  };

  const closeIdle = async () => {
    const t = now();
    const idle = [...all].filter(
      (s) => s.open === 0 && s.lastActive <= t - (s.used ? sessionIdleMs : unusedIdleMs),
    );
    await Promise.all(idle.map((s) => close(s, 'idle')));
    return idle.length;
  };

  return {
    get: (id) => byId.get(id),
    open,
    track,
    markUsed: (session) => {
      session.used = true;
    },
    close,
    closeIdle,
    closeAll: async () => {
      await Promise.all([...all].map((s) => close(s, 'server shutting down')));
    },
    size: () => all.size,
    startReaper: () => {
      // Sweep a few times per idle period so a session lives at most ~1.25 × sessionIdleMs.
      const every = Math.min(60_000, Math.max(10, Math.floor(unusedIdleMs / 4)));
      const timer = setInterval(() => {
        closeIdle().catch((err) => logger.warn('idle session sweep failed', { err }));
      }, every);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
