/**
 * `boocoder stdio` against a daemon that advertises its MCP socket: stdin and stdout are piped
 * byte for byte to a Unix socket speaking the same newline-delimited JSON-RPC, so every message
 * in either direction (roots/list, progress, cancellation) passes unchanged and nothing is parsed.
 */
import { lstat } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { isDaemonSocketName } from './socket-server.js';

export interface SocketBridgeOptions {
  socketPath: string;
  home: string;
  stdin: Readable;
  stdout: Writable;
  logger: Logger;
}

function unavailable(reason: string, cause?: unknown): BoocoderError {
  return new BoocoderError('E_DAEMON_UNAVAILABLE', `lost the boocoder daemon: ${reason}`, {}, { cause });
}

/**
 * Connects only to a socket boocoder names, directly in the home, owned by this user: a
 * daemon.json edited to point elsewhere cannot route the client's MCP traffic to another
 * user's process.
 */
async function assertOwnSocket(socketPath: string, home: string): Promise<void> {
  const path = resolve(socketPath);
  const st = await lstat(path).catch(() => undefined);
  const uid = process.getuid?.();
  if (
    dirname(path) !== resolve(home) ||
    !isDaemonSocketName(basename(path)) ||
    !st?.isSocket() ||
    (uid !== undefined && st.uid !== uid)
  ) {
    throw unavailable('its socket is missing or not a private socket in the boocoder home');
  }
}

/**
 * Pipes until stdin closes (resolves) or the daemon closes the socket first (rejects with
 * E_DAEMON_UNAVAILABLE; the caller exits non-zero so the client sees the server is gone).
 */
export async function runSocketBridge(o: SocketBridgeOptions): Promise<void> {
  await assertOwnSocket(o.socketPath, o.home);
  return new Promise<void>((resolvePipe, reject) => {
    const socket = connect(o.socketPath);
    let clientGone = false;
    let failure: unknown;
    const onClientGone = () => {
      clientGone = true;
      socket.end();
    };
    socket.once('connect', () => {
      o.stdin.pipe(socket);
      socket.pipe(o.stdout, { end: false });
    });
    socket.on('error', (err) => {
      failure = err;
      o.logger.debug('daemon socket error', { err: err.message });
    });
    socket.once('close', () => {
      o.stdin.unpipe(socket);
      if (clientGone) resolvePipe();
      else reject(unavailable('its socket closed', failure));
    });
    o.stdin.once('end', onClientGone);
    o.stdin.once('close', onClientGone);
    o.stdout.once('error', () => {
      clientGone = true;
      socket.destroy();
    });
  });
}
