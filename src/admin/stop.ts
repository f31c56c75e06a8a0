/**
 * `boocoder stop`: SIGTERM to this home's server, the same graceful shutdown as Ctrl-C on
 * `boocoder serve` (running agents get BOOCODER_SHUTDOWN_GRACE_MS, then their tasks go back to
 * the queue without spending an attempt), and a wait until it has exited.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import { BoocoderError } from '../errors.js';
import { isProcessAlive } from '../process-liveness.js';
import { requireLiveDaemon } from './status.js';

/** On top of the shutdown grace: closing the database, the HTTP server and the agents' groups. */
const EXIT_MARGIN_MS = 30_000;
const POLL_MS = 100;

export async function runStop(config: Config, out: NodeJS.WritableStream): Promise<void> {
  // Only a pid that answers /healthz as boocoder is signalled: never a process that reused it.
  const info = await requireLiveDaemon(config);
  out.write(
    `stopping boocoder (pid ${info.pid}); running agents get up to ${config.shutdownGraceMs / 1000} s\n`,
  );
  process.kill(info.pid, 'SIGTERM');
  const deadline = Date.now() + config.shutdownGraceMs + EXIT_MARGIN_MS;
  while (isProcessAlive(info.pid)) {
    if (Date.now() > deadline)
      throw new BoocoderError(
        'E_DAEMON_UNAVAILABLE',
        `boocoder (pid ${info.pid}) has not exited yet; \`boocoder logs\` shows what it is waiting for`,
      );
    await sleep(POLL_MS);
  }
  out.write('stopped\n');
}
