import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connectToDaemon,
  type DaemonInfo,
  daemonInfoPath,
  findLiveDaemon,
  readDaemonInfo,
  removeDaemonInfo,
  writeDaemonInfo,
} from '../../src/bridge/daemon-discovery.js';
import { START_LOCK_FILE, tryAcquireStartLock } from '../../src/bridge/start-lock.js';
import { isBoocoderError } from '../../src/errors.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { createEchoServer } from '../fixtures/echo-mcp-server.js';

const TOKEN = 'discovery-test-token-0123456789ab';
let home: string;
const servers: RunningHttpServer[] = [];

beforeEach(async () => {
  home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-discovery-')));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await rm(home, { recursive: true, force: true });
});

/** A pid that certainly belonged to a process which has exited. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', '']);
  return result.pid as number;
}

/** A tiny in-process daemon: the real HTTP endpoint, advertised in daemon.json under our pid. */
async function startTestDaemon(): Promise<void> {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    allowedOrigins: [],
    maxSessions: 5,
    sessionIdleMs: 60_000,
    logger: silentLogger,
    createMcpServer: createEchoServer,
  });
  servers.push(server);
  await writeDaemonInfo(home, {
    pid: process.pid,
    url: server.url,
    token: TOKEN,
    startedAt: new Date().toISOString(),
  });
}

function counting(start: () => Promise<void> = startTestDaemon) {
  const calls = { count: 0 };
  return {
    calls,
    startDaemon: async () => {
      calls.count += 1;
      await start();
    },
  };
}

const info = (over: Partial<DaemonInfo> = {}): DaemonInfo => ({
  pid: process.pid,
  url: 'http://127.0.0.1:1/mcp',
  token: TOKEN,
  startedAt: new Date().toISOString(),
  ...over,
});

describe('daemon.json', () => {
  it('is written atomically, private to its owner, and read back', async () => {
    const written = info();
    await writeDaemonInfo(home, written);
    expect((await stat(daemonInfoPath(home))).mode & 0o777).toBe(0o600);
    expect(await readDaemonInfo(home)).toEqual(written);
    expect((await readdir(home)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('is removed only by the daemon it names', async () => {
    await writeDaemonInfo(home, info({ pid: 4242 }));
    await removeDaemonInfo(home, process.pid);
    expect(await readDaemonInfo(home)).toBeDefined();
    await removeDaemonInfo(home, 4242);
    expect(await readDaemonInfo(home)).toBeUndefined();
  });

  it('is ignored when another user could have planted or edited it: group/world-writable or a symlink', async () => {
    await writeDaemonInfo(home, info());
    await chmod(daemonInfoPath(home), 0o666);
    expect(await readDaemonInfo(home)).toBeUndefined();
    const elsewhere = join(home, 'elsewhere.json');
    await writeFile(elsewhere, JSON.stringify(info()), { mode: 0o600 });
    await rm(daemonInfoPath(home));
    await symlink(elsewhere, daemonInfoPath(home));
    expect(await readDaemonInfo(home)).toBeUndefined();
  });

  it('is ignored when it would send the bridge (and its token) off this machine, or is malformed', async () => {
    for (const url of [
      'http://198.51.100.7:7311/mcp',
      'https://127.0.0.1:7311/mcp',
      'file:///etc/passwd',
      'nonsense',
    ]) {
      await writeDaemonInfo(home, info({ url }));
      expect(await readDaemonInfo(home), url).toBeUndefined();
    }
    await writeFile(daemonInfoPath(home), '{"pid":', { mode: 0o600 });
    expect(await readDaemonInfo(home)).toBeUndefined();
  });
});

describe('start lock', () => {
  it('is exclusive while its holder lives, and released only by its holder', async () => {
    const release = await tryAcquireStartLock(home, 60_000);
    expect(release).toBeDefined();
    expect(await tryAcquireStartLock(home, 60_000)).toBeUndefined();
    await release?.();
    const again = await tryAcquireStartLock(home, 60_000);
    expect(again).toBeDefined();
    // A holder whose lock was broken and retaken must not delete the new holder's lock.
    await release?.();
    expect(await tryAcquireStartLock(home, 60_000)).toBeUndefined();
    await again?.();
  });

  it('is broken when older than staleMs even if its pid lives (a hung starter)', async () => {
    const lock = { pid: process.pid, nonce: 'hung', createdAt: Date.now() - 10 * 60_000 };
    await writeFile(join(home, START_LOCK_FILE), JSON.stringify(lock), { mode: 0o600 });
    const release = await tryAcquireStartLock(home, 60_000);
    expect(release).toBeDefined();
    expect(JSON.parse(await readFile(join(home, START_LOCK_FILE), 'utf8')).nonce).not.toBe('hung');
    await release?.();
  });

  it('is left alone while empty and young: its holder may be between create and write', async () => {
    await writeFile(join(home, START_LOCK_FILE), '', { mode: 0o600 });
    expect(await tryAcquireStartLock(home, 60_000)).toBeUndefined();
  });
});

describe('connectToDaemon', () => {
  it('uses a live daemon without starting another', async () => {
    await startTestDaemon();
    const { calls, startDaemon } = counting();
    const found = await connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger });
    expect(calls.count).toBe(0);
    expect(found.token).toBe(TOKEN);
  });

  it('starts a new daemon when daemon.json names a dead pid', async () => {
    const old = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 1,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: createEchoServer,
    });
    servers.push(old);
    // Even a URL that answers does not count: the pid in the file is gone.
    await writeDaemonInfo(home, info({ pid: deadPid(), url: old.url }));
    const { calls, startDaemon } = counting();
    const found = await connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger });
    expect(calls.count).toBe(1);
    expect(found.pid).toBe(process.pid);
    expect(found.url).not.toBe(old.url);
  });

  it('starts a new daemon when the pid is alive but /healthz does not answer with it (pid reuse)', async () => {
    const other = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 1,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: createEchoServer,
    });
    servers.push(other);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      // A live process that is not the daemon at that URL (which reports our pid instead).
      await writeDaemonInfo(home, info({ pid: child.pid as number, url: other.url }));
      expect(await findLiveDaemon(home)).toBeUndefined();
      const { calls, startDaemon } = counting();
      await connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger });
      expect(calls.count).toBe(1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('starts one daemon for two concurrent callers', async () => {
    const { calls, startDaemon } = counting();
    const [a, b] = await Promise.all([
      connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger, pollMs: 20 }),
      connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger, pollMs: 20 }),
    ]);
    expect(calls.count).toBe(1);
    expect(a.url).toBe(b.url);
    expect(servers).toHaveLength(1);
    expect((await readdir(home)).includes(START_LOCK_FILE)).toBe(false);
  });

  it('breaks a start lock left by a dead process', async () => {
    await writeFile(
      join(home, START_LOCK_FILE),
      JSON.stringify({ pid: deadPid(), nonce: 'x', createdAt: Date.now() }),
      { mode: 0o600 },
    );
    const { calls, startDaemon } = counting();
    await connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger });
    expect(calls.count).toBe(1);
  });

  it('waits for a live lock holder and gives up with E_DAEMON_UNAVAILABLE pointing at `boocoder logs`', async () => {
    const release = await tryAcquireStartLock(home, 60_000);
    expect(release).toBeDefined();
    const { calls, startDaemon } = counting();
    const error = await connectToDaemon({
      home,
      startDaemon,
      timeoutMs: 300,
      logger: silentLogger,
      pollMs: 20,
    }).catch((e: unknown) => e);
    expect(calls.count).toBe(0);
    expect(isBoocoderError(error, 'E_DAEMON_UNAVAILABLE')).toBe(true);
    expect((error as Error).message).toContain('boocoder logs');
    await release?.();
    expect((await readdir(home)).includes(START_LOCK_FILE)).toBe(false);
  });

  it('fails without waiting out the timeout when the started daemon process exits', async () => {
    const startDaemon = () => spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: 'ignore' });
    const error = await connectToDaemon({
      home,
      startDaemon,
      timeoutMs: 600_000,
      logger: silentLogger,
    }).catch((e: unknown) => e);
    expect(isBoocoderError(error, 'E_DAEMON_UNAVAILABLE')).toBe(true);
    expect((await readdir(home)).includes(START_LOCK_FILE)).toBe(false);
  });

  it('reports E_DAEMON_UNAVAILABLE when starting throws', async () => {
    const startDaemon = async () => {
      throw new Error('spawn failed');
    };
    const error = await connectToDaemon({ home, startDaemon, timeoutMs: 10_000, logger: silentLogger }).catch(
      (e: unknown) => e,
    );
    expect(isBoocoderError(error, 'E_DAEMON_UNAVAILABLE')).toBe(true);
  });

  it('creates the home directory private to its owner', async () => {
    const nested = join(home, 'nested-home');
    await connectToDaemon({
      home: nested,
      startDaemon: async () => {
        const saved = home;
        home = nested;
        try {
          await startTestDaemon();
        } finally {
          home = saved;
        }
      },
      timeoutMs: 10_000,
      logger: silentLogger,
    });
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(daemonInfoPath(nested), 'utf8')).pid).toBe(process.pid);
  });
});
