/**
 * Finding and killing the agent a dead dispatcher left behind. When a dispatcher dies (kill -9, OOM,
 * a power cut of its container) its agent's process group lives on: a real agent keeps editing the
 * session worktree, which the next attempt resets and works in. So every run records the agent's
 * process (pid, start time, boot, host) on its task, and whoever takes over the expired lease kills
 * that group first, if it is on this machine and still the same process.
 *
 * Linux only (/proc); elsewhere nothing is recorded and nothing is killed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

export interface AgentProcessRecord {
  pid: number;
  /** Clock ticks after boot at which the process started: tells the process from a later one with its pid. */
  startTicks: number;
  host: string;
  bootId: string;
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTicks: number;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const pgrp = Number(fields[2]);
  const startTicks = Number(fields[19]);
  if (!Number.isInteger(pgrp) || !Number.isInteger(startTicks)) return undefined;
  return { state: fields[0] ?? '?', pgrp, startTicks };
}

let cachedBootId: string | undefined;

/** Changes at every boot: start ticks only mean something within one boot. */
export function currentBootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = '';
    }
  }
  return cachedBootId;
}

/** What to store for a just-started agent; undefined where /proc is missing (then nothing is killed later). */
export function describeAgentProcess(pid: number): AgentProcessRecord | undefined {
  const stat = readProcStat(pid);
  const bootId = currentBootId();
  if (!stat || !bootId) return undefined;
  return { pid, startTicks: stat.startTicks, host: hostname(), bootId };
}

/** Live (not zombie) processes in process group `pgid` that started no earlier than `sinceTicks`. */
export function liveGroupMembers(pgid: number, sinceTicks: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.startTicks >= sinceTicks)
      members.push(Number(entry));
  }
  return members;
}

export type OrphanOutcome = 'other-host' | 'pid-reused' | 'gone' | 'killed' | 'lingering';

/**
 * Kills the process group of a recorded agent when it is safely the same one: recorded on this host
 * in this boot, and its leader either still the very process (same start time) or gone. A group
 * whose leader is gone cannot be confused with a later one while any member lives, because Linux
 * never hands out a pid still in use as a process group id; members must also have started after
 * the recorded leader. Residual risk, accepted: the whole group exits, its pid is reused by a new
 * group leader, and that leader exits leaving children, all before the lease is taken over.
 * Members that left the group with setsid() cannot be found this way.
 */
export async function killOrphanedAgentGroup(rec: AgentProcessRecord, waitMs = 5000): Promise<OrphanOutcome> {
  if (rec.host !== hostname() || rec.bootId !== currentBootId()) return 'other-host';
  // pid 0, 1 or negative would signal our own group or everything we may signal: never.
  if (!Number.isInteger(rec.pid) || rec.pid <= 1) return 'gone';
  const leader = readProcStat(rec.pid);
  if (leader && leader.state !== 'Z' && leader.startTicks !== rec.startTicks) return 'pid-reused';
  if (liveGroupMembers(rec.pid, rec.startTicks).length === 0) return 'gone';
  // SIGKILL at once: its dispatcher is gone, nothing will record what it does from here on.
  try {
    process.kill(-rec.pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  const deadline = Date.now() + waitMs;
  while (liveGroupMembers(rec.pid, rec.startTicks).length > 0) {
    if (Date.now() >= deadline) return 'lingering';
    await delay(20);
  }
  return 'killed';
}
