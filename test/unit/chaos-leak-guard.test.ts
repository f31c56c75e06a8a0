/**
 * The leak guard's detectors, each shown a real leak: a process (and an orphan of an agent's
 * process group), a listening server with the connection it accepted, a PostgreSQL connection, an
 * armed interval, a temp folder with a registered worktree, an open PGlite database and an
 * undropped PostgreSQL database. Each test releases what it leaked, so the guard around this very
 * file (vitest.config.ts) finds nothing.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { IN_MEMORY, openPgliteDb } from '../../src/db/pglite.js';
import { silentLogger } from '../../src/log.js';
import { formatLeaks, type Leak, releaseAll } from '../helpers/chaos-leak-common.js';
import {
  findLeftoverPgDatabases,
  findOpenPglite,
  testDatabasePrefix,
} from '../helpers/chaos-leak-databases.js';
import { trackHandles } from '../helpers/chaos-leak-handles.js';
import { trackProcesses } from '../helpers/chaos-leak-processes.js';
import { trackTempDirs } from '../helpers/chaos-leak-temp-dirs.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { ADMIN_DATABASE_URL, isPostgresAvailable } from '../helpers/databases.js';
import { git } from '../helpers/worktrees-temp-repo.js';

const THIS_FILE = 'test/unit/chaos-leak-guard.test.ts';
const POSTGRES_PORT = Number(new URL(ADMIN_DATABASE_URL).port || 5432);

const summary = (leaks: Leak[]) => leaks.map((leak) => `${leak.kind}: ${leak.description}`);

describe('process detector', () => {
  it('finds a child process still running, names its command line, and kills it on release', async () => {
    const tracker = trackProcesses();
    tracker.takeBaseline();
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const exited = once(child, 'exit');
    try {
      expect(summary(tracker.find())).toEqual([`process: ${child.pid} (sleep 300)`]);
      await releaseAll(tracker.find());
      await exited;
      expect(tracker.find()).toEqual([]);
    } finally {
      tracker.stop();
    }
  });

  it("finds what an agent's process group left after its leader exited (reparented, nobody's child)", async () => {
    const tracker = trackProcesses();
    tracker.takeBaseline();
    const leader = spawn('sh', ['-c', 'sleep 301 & echo $!'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const leaderExited = once(leader, 'exit');
    let orphan: number | undefined;
    try {
      const [out] = (await once(leader.stdout, 'data')) as [Buffer];
      orphan = Number(out.toString().trim());
      await leaderExited;
      // Found at once by its group; its command line reads `sleep 301` only once its fork has
      // exec'd (before that it is the shell's own, which also contains "sleep 301").
      const exec = `process: ${orphan} (sleep 301)`;
      const leaks = await waitFor('the orphaned sleep to be found', () => {
        const found = tracker.find();
        return summary(found).includes(exec) ? found : undefined;
      });
      expect(summary(leaks)).toEqual([exec]);
      await releaseAll(leaks);
      await waitFor('the orphan to be killed', () => tracker.find().length === 0);
    } finally {
      tracker.stop();
      // Had an expectation failed, the orphan must not outlive this test.
      try {
        if (orphan) process.kill(orphan, 'SIGKILL');
      } catch {
        // killed on release, as it should be
      }
    }
  });
});

describe('handle detector', () => {
  it('finds a listening server, the connection it accepted and the client socket, with where each was made', async () => {
    const tracker = trackHandles({ postgresPort: POSTGRES_PORT });
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const accepted = once(server, 'connection');
    const client = net.connect(port, '127.0.0.1');
    await Promise.all([once(client, 'connect'), accepted]);

    const leaks = tracker.find();
    expect(leaks.map((leak) => leak.kind).sort()).toEqual([
      'accepted connection',
      'listening server',
      'open socket',
    ]);
    for (const leak of leaks) {
      expect(leak.description).toContain(`127.0.0.1:${port}`);
      expect(leak.description).toContain(THIS_FILE);
    }
    await releaseAll(leaks);
    expect(server.listening).toBe(false);
    expect(client.destroyed).toBe(true);
    await waitFor('the accepted connection to close', () => tracker.find().length === 0);
  });

  it.skipIf(!isPostgresAvailable())(
    'names a connection to PostgreSQL as one, and closes it on release',
    async () => {
      const tracker = trackHandles({ postgresPort: POSTGRES_PORT });
      const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      client.on('error', () => {});
      await client.connect();
      const leaks = tracker.find();
      expect(leaks.map((leak) => leak.kind)).toEqual(['PostgreSQL connection']);
      expect(leaks[0]?.description).toContain(THIS_FILE);
      expect(tracker.contacted(POSTGRES_PORT)).toBe(true);
      await releaseAll(leaks);
      expect(tracker.find()).toEqual([]);
      tracker.reset();
      expect(tracker.contacted(POSTGRES_PORT)).toBe(false);
    },
  );

  it("finds an armed interval that keeps the loop alive, not an unref'd or a cleared one", async () => {
    const tracker = trackHandles({ postgresPort: POSTGRES_PORT });
    const armed = setInterval(() => {}, 60_000);
    const unrefd = setInterval(() => {}, 60_000).unref();
    const cleared = setInterval(() => {}, 60_000);
    clearInterval(cleared);
    try {
      const leaks = tracker.find();
      expect(summary(leaks)).toEqual([
        expect.stringMatching(new RegExp(`^interval: armed at ${THIS_FILE}:\\d+:\\d+$`)),
      ]);
      await releaseAll(leaks);
      expect(tracker.find()).toEqual([]);
    } finally {
      clearInterval(armed);
      clearInterval(unrefd);
    }
  });
});

describe('temp dir detector', () => {
  it('finds boocoder- folders made by each mkdtemp, with the worktrees registered in them', async () => {
    const tracker = trackTempDirs();
    const other = await mkdtemp(join(tmpdir(), 'not-ours-'));
    try {
      const viaPromise = await mkdtemp(join(tmpdir(), 'boocoder-leak-promise-'));
      const viaSync = fs.mkdtempSync(join(tmpdir(), 'boocoder-leak-sync-'));
      const viaCallback = await promisify(fs.mkdtemp)(join(tmpdir(), 'boocoder-leak-callback-'));
      const repo = join(viaPromise, 'repo');
      fs.mkdirSync(repo);
      git(repo, 'init', '-q', '-b', 'main');
      git(repo, 'commit', '-q', '--allow-empty', '-m', 'initial');
      git(repo, 'worktree', 'add', '-q', join(viaPromise, 'wt'));

      const leaks = tracker.find();
      expect(leaks.map((leak) => leak.description.split(',')[0])).toEqual([viaPromise, viaSync, viaCallback]);
      expect(leaks[0]?.description).toContain(`git worktrees registered: ${join(viaPromise, 'wt')}`);
      expect(leaks[1]?.description).toContain(`made at ${THIS_FILE}`);
      await releaseAll(leaks);
      for (const dir of [viaPromise, viaSync, viaCallback]) expect(fs.existsSync(dir)).toBe(false);
      expect(tracker.find()).toEqual([]);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe('database detectors', () => {
  it('finds a PGlite database left open, and closes it on release', async () => {
    const db = await openPgliteDb({ dataDir: IN_MEMORY, logger: silentLogger });
    const leaks = findOpenPglite();
    expect(summary(leaks)).toEqual(['PGlite database: an in-memory one is still open']);
    await releaseAll(leaks);
    expect(findOpenPglite()).toEqual([]);
    await expect(db.query('SELECT 1')).rejects.toThrow();
  });

  it.skipIf(!isPostgresAvailable())(
    'finds a PostgreSQL test database never dropped, and drops it on release',
    async () => {
      const name = `${testDatabasePrefix()}leak_check`;
      const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE "${name}"`);
        const leaks = await findLeftoverPgDatabases(ADMIN_DATABASE_URL, testDatabasePrefix());
        expect(summary(leaks)).toEqual([`PostgreSQL database: ${name} was never dropped`]);
        await releaseAll(leaks);
        const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        expect(left.rowCount).toBe(0);
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS "${name}"`);
        await admin.end();
      }
    },
  );
});

describe('the failure message', () => {
  it('counts the leaks and puts each on its own line, grouped by kind', () => {
    const leak = (kind: string, description: string): Leak => ({ kind, description, release: () => {} });
    const message = formatLeaks([leak('temp dir', '/tmp/boocoder-x'), leak('interval', 'armed at a.ts:1:1')]);
    expect(message.split('\n')).toEqual([
      'this test file left 2 thing(s) behind (the guard has released them):',
      '  - interval: armed at a.ts:1:1',
      '  - temp dir: /tmp/boocoder-x',
    ]);
  });
});
