/**
 * What `boocoder status` shows, collected inside the running daemon (the embedded database opens
 * in one process only, so the CLI asks the daemon over its control socket instead of reading it).
 */
import { readFile } from 'node:fs/promises';
import type { WarmAgentInfo } from '../agents/acp/warm-sessions.js';
import { listTasks } from '../db/tasks.js';
import type { Deps } from '../services/deps.js';

/** Counts stop here: status is a glance, not a census (a project may queue thousands). */
const COUNT_CAP = 1000;
const RUNNING_SHOWN = 50;

export interface DaemonStatus {
  pid: number;
  version: string;
  url: string;
  database: string;
  startedAt: string;
  /** Tasks per state, counted up to COUNT_CAP (`capped` says which reached it). */
  queue: { pending: number; running: number; blocked: number; capped: string[] };
  running: Array<{ id: string; agent: string; startedAt: string | null }>;
  warm: { count: number; agents: WarmAgentInfo[] };
}

/** Resident memory of `pid` from /proc (Linux), or undefined where it cannot be read. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(text)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}

/** The warm agents with their memory (the pool reads it from /proc; filled in here where it did not). */
async function warmAgents(deps: Deps): Promise<DaemonStatus['warm']> {
  const listed = deps.warmSessions?.listWarmAgents() ?? [];
  const agents = await Promise.all(
    listed.map(async (a) => ({
      ...a,
      memoryBytes: a.memoryBytes ?? (a.pid ? await residentBytes(a.pid) : undefined),
    })),
  );
  return { count: agents.length, agents };
}

export async function collectDaemonStatus(
  deps: Deps,
  self: { url: string; database: string; startedAt: string; version: string },
): Promise<DaemonStatus> {
  const count = async (state: 'pending' | 'running' | 'blocked') =>
    (await listTasks(deps.db, { state, limit: COUNT_CAP })).length;
  const [pending, blocked, runningRows, warm] = await Promise.all([
    count('pending'),
    count('blocked'),
    listTasks(deps.db, { state: 'running', limit: COUNT_CAP }),
    warmAgents(deps),
  ]);
  const counts = { pending, running: runningRows.length, blocked };
  return {
    pid: process.pid,
    ...self,
    queue: {
      ...counts,
      capped: Object.entries(counts)
        .filter(([, n]) => n >= COUNT_CAP)
        .map(([state]) => state),
    },
    running: runningRows.slice(0, RUNNING_SHOWN).map((t) => ({
      id: t.id,
      agent: t.agent ?? deps.config.defaultAgent,
      startedAt: t.startedAt?.toISOString() ?? null,
    })),
    warm,
  };
}
