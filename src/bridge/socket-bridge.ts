/**
 * `boocoder stdio` against a daemon that advertises its MCP socket: the socket speaks the same
 * newline-delimited JSON-RPC as stdio, so the front (stdio-front.ts) forwards lines unchanged and
 * every message in either direction (roots/list, progress, cancellation) passes as it is.
 */
import { lstat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BoocoderError } from '../errors.js';
import { DEFAULT_MAX_BODY_BYTES } from '../http/http-server.js';
import type { Logger } from '../log.js';
import { isDaemonSocketName } from './socket-server.js';
import { runStdioFront, type StdioFrontOptions } from './stdio-front.js';

export interface SocketBridgeOptions {
  socketPath: string;
  home: string;
  stdin: Readable;
  stdout: Writable;
  logger: Logger;
  /** The longest message accepted from the client; the daemon socket's own cap by default. */
  maxMessageBytes?: number;
}

/**
 * Accepts only a socket boocoder names, directly in the home, owned by this user: a daemon.json
 * edited to point elsewhere cannot route the client's MCP traffic to another user's process.
 */
export async function assertOwnSocket(socketPath: string, home: string): Promise<string> {
  const path = resolve(socketPath);
  const st = await lstat(path).catch(() => undefined);
  const uid = process.getuid?.();
  if (
    dirname(path) !== resolve(home) ||
    !isDaemonSocketName(basename(path)) ||
    !st?.isSocket() ||
    (uid !== undefined && st.uid !== uid)
  ) {
    throw new BoocoderError(
      'E_DAEMON_UNAVAILABLE',
      'lost the boocoder daemon: its socket is missing or not a private socket in the boocoder home',
    );
  }
  return path;
}

/** Bridges to a daemon already known to be up; see runStdioFront for how it ends. */
export async function runSocketBridge(o: SocketBridgeOptions): Promise<void> {
  const front: StdioFrontOptions = {
    stdin: o.stdin,
    stdout: o.stdout,
    logger: o.logger,
    maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_BODY_BYTES,
    daemonSocket: assertOwnSocket(o.socketPath, o.home),
  };
  await front.daemonSocket;
  return runStdioFront(front);
}
