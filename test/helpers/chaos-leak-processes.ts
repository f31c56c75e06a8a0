/**
 * Leak detector for processes. It watches two things:
 *  - this process's children, read from /proc, against a baseline taken before the file's tests;
 *  - every process spawned since the tracker started (node's `child_process` diagnostics channel)
 *    and, for those started as the leader of their own process group (agents are), every live
 *    member of that group: an agent's tool processes are reparented to init when the agent exits,
 *    so they no longer show up as anybody's children, yet they are exactly what leaks.
 */
import type { ChildProcess } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { liveGroupMembers, readProcStat } from '../../src/agents/orphaned-agents.js';
import type { Leak } from './chaos-leak-common.js';
import { childrenOf } from './chaos-processes.js';

interface Spawned {
  pid: number;
  startTicks: number;
  leadsGroup: boolean;
}

export interface ProcessTracker {
  /** Remembers the children that exist now: they belong to the test runner, not to the file. */
  takeBaseline(): void;
  find(): Leak[];
  /** Forgets what was spawned so far: the next file starts from nothing. */
  reset(): void;
  stop(): void;
}

function isLive(pid: number, startTicks?: number): boolean {
  const stat = readProcStat(pid);
  return (
    stat !== undefined && stat.state !== 'Z' && (startTicks === undefined || stat.startTicks === startTicks)
  );
}

function describeProcess(pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return `${pid} (${cmd.slice(0, 200)})`;
  } catch {
    return `${pid} (exited)`;
  }
}

function processLeak(pid: number): Leak {
  return {
    kind: 'process',
    description: describeProcess(pid),
    release: () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    },
  };
}

export function trackProcesses(): ProcessTracker {
  const spawned: Spawned[] = [];
  let baseline = new Set<number>();
  const onSpawn = (message: unknown) => {
    const child = (message as { process?: ChildProcess }).process;
    // The pid exists only once the process runs; a failed spawn has nothing to leak.
    child?.once('spawn', () => {
      const pid = child.pid;
      const stat = pid === undefined ? undefined : readProcStat(pid);
      if (pid !== undefined && stat)
        spawned.push({ pid, startTicks: stat.startTicks, leadsGroup: stat.pgrp === pid });
    });
  };
  subscribe('child_process', onSpawn);
  return {
    takeBaseline() {
      baseline = new Set(childrenOf(process.pid));
    },
    find() {
      const live = new Set(childrenOf(process.pid).filter((pid) => !baseline.has(pid) && isLive(pid)));
      for (const s of spawned) {
        if (isLive(s.pid, s.startTicks)) live.add(s.pid);
        if (s.leadsGroup) for (const member of liveGroupMembers(s.pid, s.startTicks)) live.add(member);
      }
      return [...live].sort((a, b) => a - b).map(processLeak);
    },
    reset() {
      spawned.length = 0;
    },
    stop() {
      unsubscribe('child_process', onSpawn);
    },
  };
}
