/**
 * The daemon's control socket, `<home>/control-<pid>.sock`: how `boocoder status` asks a running
 * daemon what it is doing. One JSON request line in, one JSON answer line out, then the
 * connection closes. Read-only: stopping is a SIGTERM, which needs no socket.
 *
 * Only the owner can connect (0600 socket in the 0700 home): another local user cannot read the
 * queue, which names projects and agents.
 */
import { chmod, readdir, rm } from 'node:fs/promises';
import { connect, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { isProcessAlive } from '../process-liveness.js';

/** sun_path holds 104-108 bytes; a longer home has no control socket (status then says less). */
const MAX_SOCKET_PATH_BYTES = 100;
const CONTROL_NAME = /^control-(\d+)\.sock$/;
/** A request line is `{"command":"status"}`; anything longer is not one. */
const MAX_REQUEST_BYTES = 1024;

export function controlSocketPath(home: string, pid: number): string | undefined {
  const path = join(home, `control-${pid}.sock`);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES ? path : undefined;
}

export interface ControlSocket {
  close(): Promise<void>;
}

export async function startControlSocket(o: {
  path: string;
  home: string;
  logger: Logger;
  status: () => Promise<unknown>;
}): Promise<ControlSocket> {
  // Sockets of daemons that died without cleaning up (kill -9).
  for (const name of await readdir(o.home)) {
    const pid = Number(CONTROL_NAME.exec(name)?.[1]);
    if (pid && (pid === process.pid || !isProcessAlive(pid))) await rm(join(o.home, name), { force: true });
  }
  const server = createNetServer((conn) => {
    let input = '';
    conn.setEncoding('utf8');
    conn.on('error', (err) => o.logger.debug('control connection error', { err }));
    conn.on('data', (chunk: string) => {
      input += chunk;
      if (input.length > MAX_REQUEST_BYTES) conn.destroy();
      if (!input.includes('\n')) return;
      conn.pause();
      let command: unknown;
      try {
        command = (JSON.parse(input) as { command?: unknown }).command;
      } catch {
        command = undefined;
      }
      const answer =
        command === 'status'
          ? o.status().then((status) => ({ ok: true, status }))
          : Promise.resolve({ ok: false, error: 'unknown command; the control socket answers "status"' });
      answer
        .catch((err: unknown) => {
          o.logger.error('collecting the status failed', { err });
          return { ok: false, error: 'collecting the status failed; the daemon log has the details' };
        })
        .then((reply) => conn.end(`${JSON.stringify(reply)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(o.path, 0o600);
  return {
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(o.path, { force: true });
    },
  };
}

/** Asks the daemon listening on `path` for its status. */
export function requestDaemonStatus(path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = connect(path);
    let output = '';
    const fail = (why: string) => {
      conn.destroy();
      reject(
        new BoocoderError(
          'E_DAEMON_UNAVAILABLE',
          `the boocoder daemon ${why}; \`boocoder logs\` shows what it is doing`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`did not answer within ${timeoutMs / 1000} s`), timeoutMs);
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      output += chunk;
    });
    conn.on('error', () => {
      clearTimeout(timer);
      fail('refused the status request');
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(output) as { ok?: boolean; status?: unknown; error?: string };
        if (reply.ok) resolve(reply.status);
        else fail(`answered: ${reply.error ?? 'an error'}`);
      } catch {
        fail('sent an unreadable status');
      }
    });
    conn.once('connect', () => conn.write(`${JSON.stringify({ command: 'status' })}\n`));
  });
}
