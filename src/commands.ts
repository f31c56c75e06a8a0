/** What each CLI command runs. Kept apart from argv parsing so tests can start the same pieces. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { startApp } from './app.js';
import { connectToDaemon, removeDaemonInfo, writeDaemonInfo } from './bridge/daemon-discovery.js';
import { runSocketBridge } from './bridge/socket-bridge.js';
import { daemonSocketPath, startSocketServer } from './bridge/socket-server.js';
import { runStdioBridge } from './bridge/stdio-bridge.js';
import type { Config } from './config.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { assertSafeBind } from './http/guards.js';
import { startHttpServer } from './http/http-server.js';
import type { Logger } from './log.js';
import { createServer } from './server.js';
import { scopedCredentialResolver } from './subtasks/scoped-server.js';

interface Ctx {
  config: Config;
  logger: Logger;
}

const BIN = join(dirname(dirname(fileURLToPath(import.meta.url))), 'bin', 'boocoder.js');

/** Resolves on the first SIGTERM/SIGINT. */
function untilSignal(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      logger.info('shutting down', { signal });
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

export async function runServe({ config, logger }: Ctx): Promise<void> {
  assertSafeBind(config.host, config.token);
  mkdirSync(config.home, { recursive: true, mode: 0o700 });
  const app = await startApp({ config, logger, withDispatcher: true });
  const http = await startHttpServer({
    host: config.host,
    port: config.port,
    token: config.token,
    allowedOrigins: config.allowedOrigins,
    maxSessions: config.maxHttpSessions,
    sessionIdleMs: config.httpSessionIdleMs,
    unusedSessionIdleMs: config.httpUnusedSessionIdleMs,
    logger: logger.child({ part: 'http' }),
    createMcpServer: () => createServer(app.deps),
    scopedCredential: scopedCredentialResolver(app.deps),
  }).catch(async (err: unknown) => {
    await app.close();
    throw err;
  });
  if (app.deps.subtaskScopes) app.deps.subtaskScopes.endpointUrl = http.url;
  const socketPath = daemonSocketPath(config.home, process.pid);
  const socket = socketPath
    ? await startSocketServer({
        path: socketPath,
        home: config.home,
        maxSessions: config.maxHttpSessions,
        logger: logger.child({ part: 'socket' }),
        createMcpServer: () => createServer(app.deps),
      }).catch(async (err: unknown) => {
        await http.close();
        await app.close();
        throw err;
      })
    : undefined;
  await writeDaemonInfo(config.home, {
    pid: process.pid,
    url: http.url,
    startedAt: new Date().toISOString(),
    ...(config.token ? { token: config.token } : {}),
    ...(socket ? { socket: socket.path } : {}),
  });
  logger.info('boocoder is serving', { url: http.url, database: app.deps.db.kind });
  await untilSignal(logger);
  await removeDaemonInfo(config.home, process.pid);
  await socket?.close();
  await http.close();
  await app.close();
  logger.info('stopped');
}

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
const daemon = spawn(process.execPath, [bin, 'serve', '--port', '0'], { detached: true, stdio: ['ignore', fd, fd] });
writeSync(3, String(daemon.pid));
daemon.unref();
`;

/**
 * Starts `boocoder serve` in the background on a free port with a fresh token; it outlives this
 * client. Returns the daemon's pid.
 */
async function startDaemonProcess(config: Config): Promise<number> {
  mkdirSync(config.home, { recursive: true, mode: 0o700 });
  const launcher = spawn(process.execPath, ['-e', LAUNCHER, BIN, join(config.home, 'daemon.log')], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: {
      ...config.childEnv,
      BOOCODER_HOME: config.home,
      BOOCODER_HOST: '127.0.0.1',
      // Only the processes that can read daemon.json (mode 0600) can use the daemon.
      BOOCODER_TOKEN: randomBytes(24).toString('base64url'),
    },
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

export async function runStdio({ config, logger }: Ctx): Promise<void> {
  if (config.databaseUrl) {
    // On PostgreSQL several servers can share the database, each with its own dispatcher: no daemon needed.
    const app = await startApp({ config, logger, withDispatcher: true });
    const server = createServer(app.deps);
    const transport = new StdioServerTransport();
    const closed = new Promise<void>((resolve) => {
      transport.onclose = resolve;
      process.stdin.once('end', resolve);
    });
    await server.connect(transport);
    await Promise.race([closed, untilSignal(logger)]);
    await server.close();
    await app.close();
    return;
  }
  const daemon = await connectToDaemon({
    home: config.home,
    startDaemon: () => startDaemonProcess(config),
    // The first start creates the embedded database (initdb in WASM): 5-10 s on an idle 2-core
    // machine, past 30 s on a loaded one. A daemon that dies fails the wait at once, so a long
    // wait only ever waits for a daemon that is still starting.
    timeoutMs: 120_000,
    logger,
  });
  const io = { stdin: process.stdin, stdout: process.stdout, logger };
  if (daemon.socket) await runSocketBridge({ socketPath: daemon.socket, home: config.home, ...io });
  else await runStdioBridge({ url: daemon.url, token: daemon.token, ...io });
  // Idle keep-alive sockets to the daemon would hold the process open a little longer.
  process.exit(0);
}

export async function runMigrate({ config, logger }: Ctx): Promise<void> {
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    home: config.home,
    pgDir: config.pgDir,
    pgUser: config.pgUser,
    schema: config.dbSchema,
    logger,
  });
  try {
    const result = await migrate(db, { logger });
    logger.info('migrations applied', { applied: result.applied, current: result.current });
  } finally {
    await db.close();
  }
}
