/**
 * The daemon's local MCP socket: a Unix domain socket in BOOCODER_HOME where each connection is
 * one MCP session in the stdio framing (newline-delimited JSON-RPC), served by its own McpServer.
 * `boocoder stdio` only pipes bytes to it, so a tools/call costs one local socket hop instead of
 * an HTTP request plus an SSE stream.
 *
 * Only the owner can connect: the socket lives in the 0700 home and is itself made 0600, which
 * blocks other local users from driving the daemon without the HTTP token.
 */
import { chmod, readdir, rm } from 'node:fs/promises';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { DEFAULT_MAX_BODY_BYTES } from '../http/http-server.js';
import type { Logger } from '../log.js';
import { isProcessAlive } from '../process-liveness.js';
import { LineServerTransport } from './line-transport.js';

/** sun_path holds 108 bytes on Linux and 104 on macOS; a longer home falls back to HTTP. */
const MAX_SOCKET_PATH_BYTES = 100;
const SOCKET_NAME = /^mcp-(\d+)\.sock$/;

/** Where the daemon with `pid` listens, or undefined when that path is too long for a socket. */
export function daemonSocketPath(home: string, pid: number): string | undefined {
  const path = join(home, `mcp-${pid}.sock`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES ? path : undefined;
}

/** True for a socket name this module gives out: the bridge connects to nothing else. */
export function isDaemonSocketName(name: string): boolean {
  return SOCKET_NAME.test(name);
}

export interface SocketServerOptions {
  path: string;
  home: string;
  maxSessions: number;
  logger: Logger;
  createMcpServer: () => McpServer;
}

export interface SocketServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Removes the sockets of daemons that died without cleaning up (kill -9). */
async function removeStaleSockets(home: string): Promise<void> {
  for (const name of await readdir(home)) {
    const pid = Number(SOCKET_NAME.exec(name)?.[1]);
    if (pid && (pid === process.pid || !isProcessAlive(pid))) await rm(join(home, name), { force: true });
  }
}

function refuse(conn: Socket, message: string): void {
  conn.end(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } })}\n`);
}

export async function startSocketServer(o: SocketServerOptions): Promise<SocketServer> {
  await removeStaleSockets(o.home);
  const sessions = new Set<Socket>();
  const server: Server = createNetServer((conn) => {
    if (sessions.size >= o.maxSessions) {
      refuse(conn, `too many MCP sessions (${o.maxSessions}); close another client and retry`);
      return;
    }
    sessions.add(conn);
    const mcp = o.createMcpServer();
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      sessions.delete(conn);
      mcp.close().catch((err: unknown) => o.logger.debug('closing a socket session failed', { err }));
      conn.destroy();
    };
    conn.once('end', end);
    conn.once('close', end);
    conn.on('error', (err) => {
      o.logger.debug('socket session error', { err });
      end();
    });
    // The same cap as an HTTP body: a client cannot make the daemon buffer an endless line, and
    // one oversized message gets an error instead of ending the session.
    const transport = new LineServerTransport(conn, conn, DEFAULT_MAX_BODY_BYTES);
    transport.onclose = end;
    mcp.connect(transport).catch(end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(o.path, 0o600);
  o.logger.debug('MCP socket listening', { path: o.path });
  return {
    path: o.path,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of sessions) conn.destroy();
      await closed;
      await rm(o.path, { force: true });
    },
  };
}
