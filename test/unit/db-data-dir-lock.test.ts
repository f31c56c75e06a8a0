import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock, type DataDirLock, dataDirLockPath } from '../../src/db/data-dir-lock.js';
import { isBoocoderError } from '../../src/errors.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const lockModule = fileURLToPath(new URL('../../src/db/data-dir-lock.ts', import.meta.url));

let tmp: string;
let dataDir: string;
const held: DataDirLock[] = [];
const children: ChildProcess[] = [];

beforeEach(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-lock-')));
  dataDir = join(tmp, 'data');
});

afterEach(() => {
  for (const lock of held.splice(0)) lock.release();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

function acquire(): DataDirLock {
  const lock = acquireDataDirLock(dataDir);
  held.push(lock);
  return lock;
}

function writeLock(record: Record<string, unknown> | string): void {
  writeFileSync(dataDirLockPath(dataDir), typeof record === 'string' ? record : JSON.stringify(record));
}

function lockOwnerPid(): number {
  return JSON.parse(readFileSync(dataDirLockPath(dataDir), 'utf8')).pid;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
  if (child.pid === undefined) throw new Error('no pid');
  return child.pid;
}

/** A separate process that tries to take the lock, prints won/locked, and holds it until stdin closes. */
function spawnContender(): { child: ChildProcess; result: Promise<string> } {
  const script = join(tmp, 'contender.mts');
  writeFileSync(
    script,
    `import { acquireDataDirLock } from ${JSON.stringify(lockModule)};
let lock;
try { lock = acquireDataDirLock(${JSON.stringify(dataDir)}); process.stdout.write('won\\n'); }
catch (err) { process.stdout.write((err.code ?? 'error:' + err.message) + '\\n'); }
process.stdin.resume();
process.stdin.on('end', () => { lock?.release(); process.exit(0); });
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const result = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`contender exited (${code}) before answering`)));
  });
  return { child, result };
}

describe('acquireDataDirLock', () => {
  it('creates the lock file holding our pid and removes it on release', () => {
    const lock = acquire();
    expect(lock.path).toBe(`${dataDir}.lock`);
    expect(lockOwnerPid()).toBe(process.pid);
    lock.release();
    expect(() => readFileSync(lock.path)).toThrow(/ENOENT/);
    acquire();
  });

  it('refuses a second acquisition in the same process with E_DATA_DIR_LOCKED naming the holder', () => {
    acquire();
    let caught: unknown;
    try {
      acquireDataDirLock(dataDir);
    } catch (err) {
      caught = err;
    }
    expect(isBoocoderError(caught, 'E_DATA_DIR_LOCKED')).toBe(true);
    expect((caught as Error).message).toContain(`boocoder process ${process.pid}`);
    expect((caught as Error).message).toContain('boocoder stdio');
  });

  it('refuses while another live process holds it, and breaks the lock once that process is killed', async () => {
    const holder = spawnContender();
    expect(await holder.result).toBe('won');
    expect(() => acquireDataDirLock(dataDir)).toThrow(`boocoder process ${holder.child.pid}`);
    holder.child.kill('SIGKILL'); // no exit hook runs: the lock file stays behind, stale
    await once(holder.child, 'exit');
    expect(lockOwnerPid()).toBe(holder.child.pid);
    acquire();
    expect(lockOwnerPid()).toBe(process.pid);
  });

  it('breaks a stale lock left by a dead pid', async () => {
    writeLock({ pid: await deadPid(), hostname: hostname(), startedAt: Date.now(), token: 'old' });
    acquire();
    expect(lockOwnerPid()).toBe(process.pid);
  });

  it('breaks a lock with our own pid that this process does not hold (a restarted container reuses pid 1)', () => {
    writeLock({
      pid: process.pid,
      hostname: hostname(),
      startedAt: Date.now() - 60_000,
      token: 'previous-life',
    });
    acquire();
    expect(JSON.parse(readFileSync(dataDirLockPath(dataDir), 'utf8')).token).not.toBe('previous-life');
  });

  it.runIf(process.platform === 'linux')(
    'treats a live pid that started after the lock was written as reused',
    async () => {
      const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
      children.push(other);
      await once(other, 'spawn');
      writeLock({
        pid: other.pid,
        hostname: hostname(),
        startedAt: Date.now() - 3_600_000,
        token: 'hour-old',
      });
      acquire();
      expect(lockOwnerPid()).toBe(process.pid);
    },
  );

  it('breaks an unreadable lock file', () => {
    writeLock('not json');
    acquire();
    expect(lockOwnerPid()).toBe(process.pid);
  });

  it('does not delete a lock file that is no longer ours on release', () => {
    const lock = acquire();
    writeLock({ pid: 1, hostname: hostname(), startedAt: Date.now(), token: 'someone-else' });
    lock.release();
    expect(JSON.parse(readFileSync(lock.path, 'utf8')).token).toBe('someone-else');
  });

  it('lets exactly one of four processes racing to break the same stale lock win', async () => {
    writeLock({ pid: await deadPid(), hostname: hostname(), startedAt: Date.now(), token: 'stale' });
    const contenders = [0, 1, 2, 3].map(() => spawnContender());
    const results = await Promise.all(contenders.map((c) => c.result));
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r === 'E_DATA_DIR_LOCKED')).toHaveLength(3);
    const winner = contenders[results.indexOf('won')];
    expect(lockOwnerPid()).toBe(winner?.child.pid);
    // The winner releases on a clean exit.
    winner?.child.stdin?.end();
    await once(winner?.child as ChildProcess, 'exit');
    expect(() => readFileSync(dataDirLockPath(dataDir))).toThrow(/ENOENT/);
  }, 60_000);
});
