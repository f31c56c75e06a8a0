/** What each CLI command runs. Kept apart from argv parsing so tests can start the same pieces. */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDaemonStatus } from './admin/collect-status.js';
import { type App, startApp } from './app.js';
import { controlSocketPath, startControlSocket } from './bridge/control-socket.js';
import {
  connectToDaemon,
  findLiveDaemon,
  readDaemonInfo,
  removeDaemonInfo,
  writeDaemonInfo,
} from './bridge/daemon-discovery.js';
import { startDaemonProcess } from './bridge/daemon-launch.js';
import { LineServerTransport } from './bridge/line-transport.js';
import { createListingServer } from './bridge/listing-server.js';
import { assertOwnSocket } from './bridge/socket-bridge.js';
import { daemonSocketPath, startSocketServer } from './bridge/socket-server.js';
import { tryAcquireStartLock } from './bridge/start-lock.js';
import { runStdioBridge } from './bridge/stdio-bridge.js';
import { runStdioFront } from './bridge/stdio-front.js';
import type { Config } from './config.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { BoocoderError } from './errors.js';
import { assertSafeBind } from './http/guards.js';
import { DEFAULT_MAX_BODY_BYTES, type RunningHttpServer, startHttpServer } from './http/http-server.js';
import type { Logger } from './log.js';
import { isProcessAlive } from './process-liveness.js';
import { hasSubscriptions } from './resources/subscriptions.js';
import { createServer, SERVER_VERSION } from './server.js';
import { scopedCredentialResolver } from './subtasks/scoped-server.js';

interface Ctx {
  config: Config;
  logger: Logger;
}

/** The largest pid Linux hands out (pid_max): a home whose socket path fits with it fits with any. */
const MAX_PID = 4_194_304;
/** A `serve` waiting for the start lock gives up on a holder that has had it this long. */
const START_LOCK_STALE_MS = 180_000;
/** bin/boocoder.js; this module sits one folder deep both in src/ and as the bundle in dist/. */
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

/** The database a server runs on, for daemon.json and `boocoder status`: never its credentials. */
export function describeDatabase(config: Config): string {
  if (!config.databaseUrl) return 'embedded';
  try {
    const url = new URL(config.databaseUrl);
    return `postgres ${url.hostname || 'local socket'}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'postgres';
  }
}

/**
 * One server per home on the embedded database: a second `serve` (or one racing a starting
 * daemon) would fight the first over the database and leave clients talking to whichever started first. The start lock
 * is the one `boocoder stdio` takes before it launches a daemon.
 */
async function claimHome(config: Config, logger: Logger): Promise<() => Promise<void>> {
  const running = async () => {
    const live = await findLiveDaemon(config.home, 1000, logger);
    if (live)
      throw new BoocoderError(
        'E_ALREADY_RUNNING',
        `boocoder is already running for ${config.home} (pid ${live.pid}, ${live.url}); use it, or stop it with \`boocoder stop\``,
      );
  };
  await running();
  const release = await tryAcquireStartLock(config.home, START_LOCK_STALE_MS);
  if (!release)
    throw new BoocoderError(
      'E_ALREADY_RUNNING',
      `a boocoder server is starting for ${config.home}; \`boocoder status\` shows it once it is up`,
    );
  try {
    await running();
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}

/** Listens on the configured port; a daemon a client started takes any free port if that is busy. */
async function listen(config: Config, logger: Logger, app: App, daemon: boolean): Promise<RunningHttpServer> {
  const start = (port: number) =>
    startHttpServer({
      host: config.host,
      port,
      token: config.token,
      allowedOrigins: config.allowedOrigins,
      maxSessions: config.maxHttpSessions,
      sessionIdleMs: config.httpSessionIdleMs,
      unusedSessionIdleMs: config.httpUnusedSessionIdleMs,
      logger: logger.child({ part: 'http' }),
      createMcpServer: () => createServer(app.deps),
      // A session whose client waits for resource updates sends nothing meanwhile: never idle-evicted.
      hasSubscriptions,
      // Agents' sub-task connections: a task-scoped bearer opens only the scoped tools.
      scopedCredential: scopedCredentialResolver(app.deps),
    });
  try {
    return await start(config.port);
  } catch (err) {
    const busy = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
    if (!daemon || !busy || config.port === 0) throw err;
    logger.warn('the configured port is in use; the daemon listens on a free one (see daemon.json)', {
      port: config.port,
    });
    return start(0);
  }
}

export async function runServe({ config, logger }: Ctx, mode: { daemon?: boolean } = {}): Promise<void> {
  assertSafeBind(config.host, config.token);
  mkdirSync(config.home, { recursive: true, mode: 0o700 });
  // A daemon launched by `boocoder stdio` runs under the start lock its launcher holds. On
  // PostgreSQL several servers may share a home on purpose (each a dispatcher on one database).
  const release = mode.daemon || config.databaseUrl ? undefined : await claimHome(config, logger);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  const startedAt = new Date().toISOString();
  const database = describeDatabase(config);
  try {
    const app = await startApp({ config, logger, withDispatcher: true });
    closers.push(() => app.close());
    const http = await listen(config, logger, app, mode.daemon === true);
    if (app.deps.subtaskScopes) app.deps.subtaskScopes.endpointUrl = http.url;
    closers.push(() => http.close());
    const socketPath = daemonSocketPath(config.home, process.pid);
    const socket = socketPath
      ? await startSocketServer({
          path: socketPath,
          home: config.home,
          maxSessions: config.maxHttpSessions,
          logger: logger.child({ part: 'socket' }),
          createMcpServer: () => createServer(app.deps),
        })
      : undefined;
    if (socket) closers.push(() => socket.close());
    const controlPath = controlSocketPath(config.home, process.pid);
    if (controlPath) {
      const self = { url: http.url, database, startedAt, version: SERVER_VERSION };
      const control = await startControlSocket({
        path: controlPath,
        home: config.home,
        logger: logger.child({ part: 'control' }),
        status: () => collectDaemonStatus(app.deps, self),
      });
      closers.push(() => control.close());
    }
    await writeDaemonInfo(config.home, {
      pid: process.pid,
      url: http.url,
      startedAt,
      version: SERVER_VERSION,
      database,
      ...(config.token ? { token: config.token } : {}),
      ...(socket ? { socket: socket.path } : {}),
    });
    closers.push(() => removeDaemonInfo(config.home, process.pid));
  } catch (err) {
    await closeAll();
    throw err;
  } finally {
    await release?.();
  }
  logger.info('boocoder is serving', { database, version: SERVER_VERSION });
  await untilSignal(logger);
  await closeAll();
  logger.info('stopped');
}

/**
 * A daemon of another boocoder version already running on this home: its tools may differ from
 * this build's, so the front must not answer for it (it waits and forwards instead).
 */
async function otherVersionRunning(config: Config, logger: Logger): Promise<boolean> {
  const info = await readDaemonInfo(config.home, logger);
  if (!info || info.version === SERVER_VERSION || !isProcessAlive(info.pid)) return false;
  logger.warn(
    'a boocoder daemon of another version is running on this home; `boocoder stop` and reconnect to use this one',
    {
      running: info.version ?? 'unknown',
      this: SERVER_VERSION,
    },
  );
  return true;
}

export async function runStdio({ config, logger }: Ctx): Promise<void> {
  if (config.databaseUrl) {
    // On PostgreSQL several servers can share the database, each with its own dispatcher: no
    // daemon needed, and tasks survive this process (a shutdown hands them back to the queue).
    const app = await startApp({ config, logger, withDispatcher: true });
    const server = createServer(app.deps);
    const transport = new LineServerTransport(process.stdin, process.stdout, DEFAULT_MAX_BODY_BYTES);
    transport.onerror = (err) => logger.warn('unreadable message from the MCP client', { err: err.message });
    const closed = new Promise<void>((resolve) => {
      transport.onclose = resolve;
    });
    await server.connect(transport);
    await Promise.race([closed, untilSignal(logger)]);
    await server.close();
    await app.close();
    return;
  }
  const connecting = () =>
    connectToDaemon({
      home: config.home,
      startDaemon: () => startDaemonProcess(config, BIN),
      // The first start creates the embedded database: seconds on an idle machine, past 30 s on
      // a loaded one. A daemon that dies fails the wait at once, so a long wait only ever waits
      // for a daemon that is still starting.
      timeoutMs: 120_000,
      logger,
    });
  const io = { stdin: process.stdin, stdout: process.stdout, logger };
  if (!daemonSocketPath(config.home, MAX_PID)) {
    // A home too long for a Unix socket: the daemon is reached over HTTP, once it is up.
    const daemon = await connecting();
    await runStdioBridge({ url: daemon.url, token: daemon.token, ...io });
    process.exit(0);
  }
  const olderDaemon = await otherVersionRunning(config, logger);
  const daemon = connecting();
  await runStdioFront({
    ...io,
    maxMessageBytes: DEFAULT_MAX_BODY_BYTES,
    daemonSocket: daemon.then((found) => {
      if (!found.socket)
        throw new BoocoderError(
          'E_DAEMON_UNAVAILABLE',
          'the running boocoder daemon has no MCP socket (an older version); stop it with `boocoder stop` and reconnect',
        );
      return assertOwnSocket(found.socket, config.home);
    }),
    ...(olderDaemon ? {} : { localServer: () => createListingServer(config, logger) }),
  });
  // A client that leaves while the server starts (a `claude mcp list` check) must not abandon the
  // start half-way: this process holds the start lock, and the server it launched would come up
  // unannounced to anyone waiting. The start is bounded by connectToDaemon's own timeout.
  await daemon.catch(() => undefined);
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
