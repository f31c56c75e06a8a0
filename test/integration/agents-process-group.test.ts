import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  isProcessGroupAlive,
  killProcessGroup,
  spawnInProcessGroup,
  terminateProcessGroup,
  waitForSpawn,
} from '../../src/agents/process-group.js';

let dir: string;
const started: ChildProcess[] = [];

beforeEach(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-pgroup-')));
});

afterEach(async () => {
  for (const child of started.splice(0)) killProcessGroup(child, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function start(script: string): ChildProcess {
  const child = spawnInProcessGroup('/bin/sh', ['-c', script], {
    cwd: dir,
    env: { PATH: '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  started.push(child);
  return child;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const [chunk] = (await once(child.stdout as NonNullable<typeof child.stdout>, 'data')) as [Buffer];
  return chunk.toString().trim();
}

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
}

async function groupOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return Number(fields[2]);
}

describe('process groups', () => {
  it('starts the child as the leader of its own group', async () => {
    const child = start('echo ready; sleep 1000');
    await waitForSpawn(child);
    await firstLine(child);
    const pid = child.pid as number;
    expect(await groupOf(pid)).toBe(pid);
    expect(await groupOf(process.pid)).not.toBe(pid);
  });

  it('SIGTERMs a well-behaved group and reports it terminated', async () => {
    const child = start('echo ready; exec sleep 1000');
    await firstLine(child);
    expect(await terminateProcessGroup(child, { graceMs: 5000 })).toBe('terminated');
    expect(exists(child.pid as number)).toBe(false);
  });

  it('SIGKILLs a group whose leader and grandchild ignore SIGTERM, leaving no orphan', async () => {
    // The shell ignores TERM and so does the background child it starts (ignored signals are inherited).
    const child = start("trap '' TERM; sleep 1000 & echo $!; wait");
    const grandchild = Number(await firstLine(child));
    expect(exists(grandchild)).toBe(true);
    expect(await terminateProcessGroup(child, { graceMs: 200 })).toBe('killed');
    expect(exists(child.pid as number)).toBe(false);
    expect(exists(grandchild)).toBe(false);
    expect(isProcessGroupAlive(child)).toBe(false);
  }, 20_000);

  it('kills a grandchild left behind after its parent already exited (the codex npm-wrapper case)', async () => {
    const child = start('sleep 1000 & echo $!');
    const grandchild = Number(await firstLine(child));
    await once(child, 'exit');
    expect(exists(grandchild)).toBe(true);
    expect(await terminateProcessGroup(child, { graceMs: 1000 })).not.toBe('already-gone');
    expect(exists(grandchild)).toBe(false);
  }, 20_000);

  it('reports an exited group as already gone', async () => {
    const child = start('exit 0');
    await once(child, 'exit');
    await expect(terminateProcessGroup(child)).resolves.toBe('already-gone');
  });

  it('never signals pid 0, 1 or negative ids (our own group, init, everything)', () => {
    for (const pid of [0, 1, -1, -5, 1.5]) {
      expect(killProcessGroup(pid, 'SIGTERM')).toBe(false);
      expect(isProcessGroupAlive(pid)).toBe(false);
    }
  });

  it('passes arguments without a shell: metacharacters stay literal', async () => {
    const marker = join(dir, 'marker');
    const child = spawnInProcessGroup('/bin/echo', [`; touch ${marker}`, `$(touch ${marker})`], {
      cwd: dir,
      env: {},
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    started.push(child);
    expect(await firstLine(child)).toBe(`; touch ${marker} $(touch ${marker})`);
    await once(child, 'exit');
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects waitForSpawn with ENOENT for a missing binary', async () => {
    const child = spawnInProcessGroup(join(dir, 'missing'), [], { cwd: dir, env: {}, stdio: 'ignore' });
    await expect(waitForSpawn(child)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
