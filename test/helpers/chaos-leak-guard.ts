/**
 * Leak guard (a vitest setup file, so it wraps every test file): a test file that leaves a child
 * process behind fails. It watches two things:
 *  - this process's children, read from /proc before the file's tests and after its last hook;
 *  - every process the file spawned (node's `child_process` diagnostics channel) and, for those
 *    started as the leader of their own process group (agents are), every live member of that
 *    group: an agent's tool processes are reparented to init when the agent exits, so they no
 *    longer show up as anybody's children, yet they are exactly what leaks.
 * Whatever is still alive a few seconds after the file's own cleanup is reported and then killed,
 * so one leaking file does not spill into the next.
 */
import type { ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';
import { liveGroupMembers, readProcStat } from '../../src/dispatcher/orphaned-agents.js';
import { childrenOf } from './chaos-processes.js';

/** How long processes get to finish exiting after the file's cleanup (init reaps orphans lazily). */
const SETTLE_MS = 5000;

interface Spawned {
  pid: number;
  startTicks: number;
  leadsGroup: boolean;
}

const spawned: Spawned[] = [];
let baseline = new Set<number>();

subscribe('child_process', (message) => {
  const child = (message as { process?: ChildProcess }).process;
  // The pid exists only once the process runs; a failed spawn has nothing to leak.
  child?.once('spawn', () => {
    const pid = child.pid;
    const stat = pid === undefined ? undefined : readProcStat(pid);
    if (pid !== undefined && stat)
      spawned.push({ pid, startTicks: stat.startTicks, leadsGroup: stat.pgrp === pid });
  });
});

function isLive(pid: number, startTicks?: number): boolean {
  const stat = readProcStat(pid);
  return (
    stat !== undefined && stat.state !== 'Z' && (startTicks === undefined || stat.startTicks === startTicks)
  );
}

function leftovers(): number[] {
  const live = new Set(childrenOf(process.pid).filter((pid) => !baseline.has(pid) && isLive(pid)));
  for (const s of spawned) {
    if (isLive(s.pid, s.startTicks)) live.add(s.pid);
    if (s.leadsGroup) for (const member of liveGroupMembers(s.pid, s.startTicks)) live.add(member);
  }
  return [...live].sort((a, b) => a - b);
}

function describeProcess(pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return `${pid} (${cmd.slice(0, 200)})`;
  } catch {
    return `${pid} (exited)`;
  }
}

beforeAll(() => {
  baseline = new Set(childrenOf(process.pid));
});

afterAll(async () => {
  const deadline = Date.now() + SETTLE_MS;
  let left = leftovers();
  while (left.length > 0 && Date.now() < deadline) {
    await delay(50);
    left = leftovers();
  }
  spawned.length = 0;
  if (left.length === 0) return;
  const report = left.map(describeProcess);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`this test file left ${left.length} process(es) running: ${report.join('; ')}`);
});
