import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import {
  isProcessAlive,
  locateNativeDir,
  readPostmasterPid,
} from '../../src/db/embedded-postgres-process.js';
import { openDatabase } from '../../src/db/open.js';
import { silentLogger } from '../../src/log.js';
import { startTsxScript, waitForReady } from '../helpers/chaos-processes.js';

const ownerFixture = fileURLToPath(new URL('../fixtures/embedded-postgres-owner.ts', import.meta.url));
const asRoot = process.getuid?.() === 0;

let root: string;
let home: string;
let pgDir: string;
const started: EmbeddedPostgres[] = [];

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-embedded-pg-')));
  // As root, postgres runs as `nobody`, who must be able to enter the folder that holds pgDir.
  chmodSync(root, 0o755);
  home = join(root, 'home');
  pgDir = join(root, 'pg');
});

afterEach(async () => {
  for (const e of started.splice(0)) await e.stop();
  const left = readPostmasterPid(join(pgDir, 'data'));
  expect(left !== undefined && isProcessAlive(left)).toBe(false);
  rmSync(root, { recursive: true, force: true });
});

async function start(extra: { nativeDir?: string } = {}): Promise<EmbeddedPostgres> {
  const e = await startEmbeddedPostgres({ home, pgDir, logger: silentLogger, ...extra });
  started.push(e);
  return e;
}

async function ask<T>(connectionString: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL', () => {
  it('initialises a cluster on a Unix socket only, as an unprivileged user, password in the home', async () => {
    const e = await start();
    expect(e.owner).toBe(true);
    const [settings] = await ask<{ listen: string; sockets: string; fsync: string }>(
      e.connectionString,
      "SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets, current_setting('fsync') AS fsync",
    );
    // No TCP port at all: nothing to collide with a system PostgreSQL on 5432.
    expect(settings).toEqual({ listen: '', sockets: pgDir, fsync: 'on' });
    expect(statSync(join(home, 'pg-password')).mode & 0o777).toBe(0o600);
    expect(statSync(join(pgDir, 'data')).mode & 0o077).toBe(0);
    const pid = readPostmasterPid(join(pgDir, 'data'));
    expect(pid).toBeDefined();
    if (asRoot) expect(statSync(`/proc/${pid}`).uid).not.toBe(0);
    await e.stop();
    expect(isProcessAlive(pid as number)).toBe(false);
  });

  it('keeps its data across a stop and a start, and a second opener joins as a guest', async () => {
    const first = await start();
    await ask(first.connectionString, 'CREATE TABLE kept (x INT); INSERT INTO kept VALUES (7)');
    await first.stop();
    // As after a reboot: the dead postmaster's pid file names a pid that is now another process.
    writeFileSync(join(pgDir, 'data', 'postmaster.pid'), `${process.pid}\n${join(pgDir, 'data')}\n`);
    const again = await start();
    const guest = await start();
    expect([again.owner, guest.owner]).toEqual([true, false]);
    await guest.stop();
    // The guest left the server running for its owner.
    expect(await ask(again.connectionString, 'SELECT x FROM kept')).toEqual([{ x: 7 }]);
  });

  it('runs without the library links the package postinstall would create', async () => {
    const packaged = await locateNativeDir();
    const bare = join(root, 'bare', 'native');
    mkdirSync(join(root, 'bare'), { mode: 0o755 });
    // Hard links: a copy of the package as npm leaves it when install scripts do not run.
    execFileSync('cp', ['-al', packaged, bare]);
    for (const name of readdirSync(join(bare, 'lib'))) {
      if (lstatSync(join(bare, 'lib', name)).isSymbolicLink()) rmSync(join(bare, 'lib', name));
    }
    expect(existsSync(join(bare, 'lib', 'libicui18n.so.60'))).toBe(false);
    const e = await start({ nativeDir: bare });
    expect(await ask(e.connectionString, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('adopts the postmaster a kill -9ed owner left running, and stops it on close', async () => {
    const owner = startTsxScript(ownerFixture, {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      BOOCODER_HOME: home,
      BOOCODER_PG_DIR: pgDir,
    });
    await waitForReady(owner);
    const pid = readPostmasterPid(join(pgDir, 'data'));
    owner.child.kill('SIGKILL');
    await owner.exited;
    expect(isProcessAlive(pid as number)).toBe(true);
    const db = await openDatabase({ home, pgDir, logger: silentLogger });
    expect(readPostmasterPid(join(pgDir, 'data'))).toBe(pid);
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await db.close();
    expect(isProcessAlive(pid as number)).toBe(false);
  });
});
