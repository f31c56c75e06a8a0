/**
 * The reaping of an `opencode serve` a crashed boocoder left behind, on its guards: real processes
 * stand in for the server (a `sleep` leading its own process group) and for the dead owner (a
 * process that ran and exited). A server whose owner is gone is killed; one whose recorded pid now
 * belongs to another process, or whose owner still runs, or whose record is not this user's
 * well-formed file, is never signalled. The real crash (kill -9 of `boocoder serve`) is in
 * test/chaos/opencode-serve-killed.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpencodeServerHolder } from '../../src/agents/opencode-serve/holder.js';
import {
  reapOrphanedServes,
  recordServeProcess,
  serveRecordsDir,
} from '../../src/agents/opencode-serve/orphans.js';
import { type AgentProcessRecord, describeAgentProcess } from '../../src/agents/orphaned-agents.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { silentLogger } from '../../src/log.js';
import { testHome } from '../helpers/boocoder-app.js';
import { killGroups } from '../helpers/chaos-processes.js';

let home: string;
let deadOwner: AgentProcessRecord;
const stragglers: ChildProcess[] = [];

/** A real process leading its own group, as `opencode serve` does. */
async function startStandIn(): Promise<ChildProcess> {
  const child = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  await new Promise((resolve) => child.once('spawn', resolve));
  stragglers.push(child);
  return child;
}

async function writeRecord(owner: AgentProcessRecord, server: AgentProcessRecord): Promise<string> {
  const dir = serveRecordsDir(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${owner.pid}-${server.pid}.json`);
  await writeFile(file, JSON.stringify({ owner, server }), { mode: 0o600 });
  return file;
}

const records = async () => readdir(serveRecordsDir(home)).catch(() => [] as string[]);

beforeAll(async () => {
  ({ home } = await testHome());
  // An owner that ran and is gone: its pid and start time as they were recorded.
  const owner = spawn('sleep', ['0.01'], { stdio: 'ignore' });
  await new Promise((resolve) => owner.once('spawn', resolve));
  deadOwner = describeAgentProcess(owner.pid as number) as AgentProcessRecord;
  await new Promise((resolve) => owner.once('exit', resolve));
  expect(deadOwner).toBeDefined();
});

afterEach(async () => {
  killGroups(stragglers.map((c) => c.pid as number));
  stragglers.length = 0;
  await rm(serveRecordsDir(home), { recursive: true, force: true });
});

afterAll(async () => {
  if (home) await rm(home, { recursive: true, force: true });
});

describe('reaping the opencode server of a crashed boocoder', () => {
  it('kills the recorded server group when its owner is gone, and drops the record', async () => {
    const server = await startStandIn();
    const exited = new Promise((resolve) => server.once('exit', resolve));
    await writeRecord(deadOwner, describeAgentProcess(server.pid as number) as AgentProcessRecord);
    expect(await reapOrphanedServes(home, silentLogger)).toEqual(['killed']);
    await exited;
    expect(isProcessGroupAlive(server.pid as number)).toBe(false);
    expect(await records()).toEqual([]);
  });

  it('never kills a process that got the recorded pid since (other start time)', async () => {
    const other = await startStandIn();
    const now = describeAgentProcess(other.pid as number) as AgentProcessRecord;
    await writeRecord(deadOwner, { ...now, startTicks: now.startTicks - 1 });
    expect(await reapOrphanedServes(home, silentLogger)).toEqual(['pid-reused']);
    expect(isProcessGroupAlive(other.pid as number)).toBe(true);
    expect(await records()).toEqual([]);
  });

  it('leaves the server of a boocoder that still runs alone', async () => {
    const server = await startStandIn();
    const live = describeAgentProcess(process.pid) as AgentProcessRecord;
    await writeRecord(live, describeAgentProcess(server.pid as number) as AgentProcessRecord);
    expect(await reapOrphanedServes(home, silentLogger)).toEqual(['owner-alive']);
    expect(isProcessGroupAlive(server.pid as number)).toBe(true);
    expect(await records()).toHaveLength(1);
  });

  it('acts on no record it did not write itself: a symlink or a malformed file', async () => {
    const server = await startStandIn();
    const file = await writeRecord(
      deadOwner,
      describeAgentProcess(server.pid as number) as AgentProcessRecord,
    );
    const planted = join(serveRecordsDir(home), `1-${server.pid}.json`);
    await symlink(file, planted);
    await rm(file);
    await writeFile(join(serveRecordsDir(home), '2-3.json'), '{"owner": 1}');
    const outside = join(home, 'elsewhere.json');
    await writeFile(
      outside,
      JSON.stringify({ owner: deadOwner, server: describeAgentProcess(server.pid as number) }),
    );
    await symlink(outside, join(serveRecordsDir(home), `4-${server.pid}.json`));
    expect(await reapOrphanedServes(home, silentLogger)).toEqual(['invalid', 'invalid', 'invalid']);
    expect(isProcessGroupAlive(server.pid as number)).toBe(true);
  });

  it('records a started server for its owner and reaps at the holder’s creation', async () => {
    const server = await startStandIn();
    const remove = await recordServeProcess(home, server.pid as number);
    expect(await records()).toEqual([`${process.pid}-${server.pid}.json`]);
    // This process still runs: a new holder (a second app sharing the home) leaves the server be.
    const holder = new OpencodeServerHolder({ home, childEnv: {}, logger: silentLogger });
    await holder.close();
    expect(isProcessGroupAlive(server.pid as number)).toBe(true);
    await remove?.();
    expect(await records()).toEqual([]);
  });
});
