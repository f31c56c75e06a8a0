/**
 * Launching the daemon a client's `boocoder stdio` needs: `boocoder serve --daemon` in the
 * background, no child of the client's process tree.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';

/**
 * Runs in a short-lived launcher process: starts the daemon in its own session and exits at once,
 * so the daemon is no child of the bridge. Some clients (opencode) SIGTERM every descendant of an
 * MCP server they stop; a daemon that is only detached would die with the bridge, and its tasks too.
 * The launcher reports the daemon's pid on file descriptor 3, a private pipe to this process: stdout
 * is the MCP stream and is not touched.
 */
const LAUNCHER = `
const { spawn } = require('node:child_process');
const { openSync, writeSync } = require('node:fs');
const [bin, log] = process.argv.slice(1);
const fd = openSync(log, 'a', 0o600);
const daemon = spawn(process.execPath, [bin, 'serve', '--daemon'], { detached: true, stdio: ['ignore', fd, fd] });
writeSync(3, String(daemon.pid));
daemon.unref();
`;

/**
 * Starts `boocoder serve --daemon` (`bin` is bin/boocoder.js) in the background with the user's own settings (port, token),
 * so the daemon is the same server `boocoder serve` would be and the HTTP endpoint is where the
 * docs say; it outlives this client. Returns the daemon's pid.
 */
export async function startDaemonProcess(config: Config, bin: string): Promise<number> {
  mkdirSync(config.home, { recursive: true, mode: 0o700 });
  const launcher = spawn(process.execPath, ['-e', LAUNCHER, bin, join(config.home, 'daemon.log')], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...config.childEnv, BOOCODER_HOME: config.home },
  });
  let out = '';
  launcher.stdio[3]?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  return new Promise<number>((resolve, reject) => {
    launcher.once('error', reject);
    launcher.once('close', (code) => {
      const pid = Number(out);
      if (code === 0 && Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`the daemon launcher exited with code ${code}`));
    });
  });
}
