/**
 * A PostgreSQL cluster of the test's own, for chaos tests that stop, crash and restart the server:
 * the machine's shared PostgreSQL on 5432 serves other test files at the same time and must never
 * be restarted.
 *
 *   const pg = await startPrivatePostgres();   // initdb + start, trust auth, 127.0.0.1 only
 *   await pg.restart({ mode: 'immediate' });   // a crash: SIGQUIT, crash recovery on start
 *   await pg.destroy();                         // stops it and deletes everything
 *
 * It needs root (the server refuses to run as root, so everything runs as the postgres user through
 * runuser) and the binaries in /usr/lib/postgresql/<version>/bin. When either is missing,
 * `privatePostgresProblem` says why: tests skip loudly, and fail with CI or BOOCODER_REQUIRE_PG=1
 * set, as the PostgreSQL half of the suite does (test/helpers/databases.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const PG_LIB = '/usr/lib/postgresql';
const requirePg = Boolean(process.env.CI) || process.env.BOOCODER_REQUIRE_PG === '1';

export type StopMode = 'fast' | 'immediate';

export interface PrivatePostgres {
  readonly port: number;
  /** A URL for `database` (default postgres) as the superuser postgres, no password (trust). */
  url(database?: string): string;
  /** fast: backends are told to exit (57P01) and the server checkpoints; immediate: a crash. */
  stop(options?: { mode?: StopMode }): Promise<void>;
  start(): Promise<void>;
  restart(options?: { mode?: StopMode }): Promise<void>;
  /** Stops the server (immediate) and deletes its files; safe to call twice, or after a failed start. */
  destroy(): Promise<void>;
}

/** The newest installed server's bin directory, or undefined. */
function findBinDir(): string | undefined {
  if (!existsSync(PG_LIB)) return undefined;
  const versions = readdirSync(PG_LIB)
    .filter(
      (v) => existsSync(join(PG_LIB, v, 'bin', 'initdb')) && existsSync(join(PG_LIB, v, 'bin', 'pg_ctl')),
    )
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(PG_LIB, versions[0], 'bin');
}

function postgresIds(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return undefined;
  }
}

const binDir = findBinDir();
const owner = postgresIds();

const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));

function findProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (needed to run initdb as the postgres user)';
  if (!binDir) return `no initdb/pg_ctl under ${PG_LIB}/*/bin`;
  if (!owner) return 'no postgres user';
  if (!runuser) return 'no runuser';
  return undefined;
}

/** Why a private cluster cannot be started here, or undefined when it can. */
export const privatePostgresProblem = findProblem();

if (privatePostgresProblem !== undefined) {
  if (requirePg) {
    throw new Error(
      `a private PostgreSQL cluster is required (CI or BOOCODER_REQUIRE_PG=1) but cannot be started: ${privatePostgresProblem}`,
    );
  }
  console.warn(
    `\n*** private PostgreSQL chaos tests SKIPPED: ${privatePostgresProblem}. CI requires them. ***\n`,
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

/** Runs a PostgreSQL binary as the postgres user; asynchronously, so the app under test keeps running. */
async function asPostgres(cwd: string, binary: string, args: string[]): Promise<void> {
  try {
    await run(runuser as string, ['-u', 'postgres', '--', join(binDir as string, binary), ...args], {
      cwd,
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      timeout: 120_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${[binary, ...args].join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** The postmaster's pid from its pid file (first line), or undefined when it is not running. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  if (privatePostgresProblem !== undefined) throw new Error(privatePostgresProblem);
  const ids = owner as { uid: number; gid: number };
  const root = await mkdtemp(join(tmpdir(), 'boocoder-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const logFile = join(root, 'server.log');
  // A crashed test process must not leave a server running: kill it (synchronously) on exit.
  const onExit = () => {
    const pid = postmasterPid(dataDir);
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let destroyed = false;
  let port = 0;

  const pgCtl = (args: string[]) => asPostgres(root, 'pg_ctl', ['-D', dataDir, ...args]);
  const cluster: PrivatePostgres = {
    get port() {
      return port;
    },
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      // fsync off: these tests crash the server's processes, never the machine, so the page cache
      // keeps every committed write; syncing would only slow them down.
      const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off`;
      await pgCtl(['-w', '-t', '60', '-l', logFile, '-o', options, 'start']);
    },
    async stop(o = {}) {
      await pgCtl(['-w', '-t', '60', '-m', o.mode ?? 'fast', 'stop']);
    },
    async restart(o = {}) {
      await cluster.stop(o);
      await cluster.start();
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (postmasterPid(dataDir) !== undefined) await cluster.stop({ mode: 'immediate' }).catch(() => {});
      process.removeListener('exit', onExit);
      onExit();
      await rm(root, { recursive: true, force: true });
    },
  };

  try {
    await chown(root, ids.uid, ids.gid);
    await mkdir(socketDir);
    await chown(socketDir, ids.uid, ids.gid);
    await asPostgres(root, 'initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '--no-instructions',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    // Another process may take the free port before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await cluster.start();
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    return cluster;
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}
