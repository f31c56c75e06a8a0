/**
 * A zombie is not a lock holder: a daemon killed with -9 whose parent has not reaped it (or never
 * will: node as pid 1 in a container without an init) must not keep the embedded database or the
 * daemon start lock. The zombie here is real: a `sh` that starts a child and then `exec`s into
 * `sleep`, which never waits for it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { START_LOCK_FILE, tryAcquireStartLock } from '../../src/bridge/start-lock.js';
import { acquireDataDirLock, dataDirLockPath } from '../../src/db/data-dir-lock.js';
import { isProcessAlive, processState } from '../../src/process-liveness.js';

let tmp: string;
let parent: ChildProcess | undefined;

beforeEach(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-zombie-')));
});

afterEach(async () => {
  if (parent && parent.exitCode === null && parent.signalCode === null) {
    // The zombie is re-parented to init (or the nearest subreaper), which reaps it.
    parent.kill('SIGKILL');
    await once(parent, 'exit');
  }
  parent = undefined;
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * The pid of a process that has exited and whose parent will not reap it. The child waits for a
 * byte on fd 3 that is sent only once its parent has become `sleep`: a shell that had not yet
 * exec'd could otherwise reap it first.
 */
async function makeZombie(): Promise<number> {
  const sh = spawn('sh', ['-c', 'head -c1 <&3 >/dev/null & echo $!; exec sleep 600'], {
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
  });
  parent = sh;
  const [line] = (await once(sh.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const pid = Number(line.toString().trim());
  expect(Number.isInteger(pid) && pid > 0).toBe(true);
  const comm = () => readFileSync(`/proc/${sh.pid}/comm`, 'utf8').trim();
  while (comm() !== 'sleep') await delay(10);
  (sh.stdio[3] as NodeJS.WritableStream).end('x');
  while (processState(pid) !== 'Z') await delay(10);
  return pid;
}

describe.skipIf(process.platform !== 'linux')('a zombie holds no lock', () => {
  it('is not alive, though kill(pid, 0) still succeeds on it', async () => {
    const zombie = await makeZombie();
    expect(() => process.kill(zombie, 0)).not.toThrow();
    expect(isProcessAlive(zombie)).toBe(false);
    expect(isProcessAlive(process.pid)).toBe(true);
  });

  it('the embedded database lock of a zombie is taken over', async () => {
    const zombie = await makeZombie();
    const dataDir = join(tmp, 'data');
    writeFileSync(
      dataDirLockPath(dataDir),
      JSON.stringify({ pid: zombie, hostname: hostname(), startedAt: Date.now(), token: 'dead-daemon' }),
    );
    const lock = acquireDataDirLock(dataDir);
    lock.release();
  });

  it('the daemon start lock of a zombie is taken over', async () => {
    const zombie = await makeZombie();
    writeFileSync(
      join(tmp, START_LOCK_FILE),
      JSON.stringify({ pid: zombie, nonce: 'dead-starter', createdAt: Date.now() }),
    );
    const release = await tryAcquireStartLock(tmp, 60_000);
    expect(release).toBeTypeOf('function');
    await release?.();
  });
});
