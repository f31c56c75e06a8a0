/**
 * The resident memory of agents' whole process groups, read from /proc: an agent is its leader
 * plus whatever it started (language servers, tool processes), all in the group the driver made
 * for it. Linux only; elsewhere nothing is known, and then no memory cap applies.
 */
import { readdirSync, readFileSync } from 'node:fs';

function groupOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return Number.isInteger(pgrp) ? pgrp : undefined;
  } catch {
    return undefined;
  }
}

function residentBytes(pid: string): number {
  try {
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    // A zombie has no VmRSS line: it holds no memory.
    return rss ? Number(rss[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Bytes resident in each process group led by one of `leaders` (one pass over /proc). A leader
 * whose group has no process left, or any leader where /proc is missing, has no entry.
 */
export function processGroupsMemoryBytes(leaders: readonly number[]): Map<number, number> {
  const wanted = new Set(leaders.filter((p) => Number.isInteger(p) && p > 1));
  const out = new Map<number, number>();
  if (wanted.size === 0) return out;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pgrp = groupOf(entry);
    if (pgrp === undefined || !wanted.has(pgrp)) continue;
    out.set(pgrp, (out.get(pgrp) ?? 0) + residentBytes(entry));
  }
  return out;
}
