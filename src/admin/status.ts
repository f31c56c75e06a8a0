/** `boocoder status`: what the server for this home is doing, for a human at a terminal. */

import { controlSocketPath, requestDaemonStatus } from '../bridge/control-socket.js';
import { type DaemonInfo, findLiveDaemon, readDaemonInfo } from '../bridge/daemon-discovery.js';
import type { Config } from '../config.js';
import { BoocoderError } from '../errors.js';
import type { DaemonStatus } from './collect-status.js';

const STATUS_TIMEOUT_MS = 10_000;

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const mib = (bytes: number | undefined) =>
  bytes === undefined ? 'memory unknown' : `${Math.round(bytes / 1048576)} MiB`;

export function formatStatus(s: DaemonStatus, now: number): string {
  const q = s.queue;
  const count = (state: 'pending' | 'running' | 'blocked') =>
    `${q[state]}${q.capped.includes(state) ? '+' : ''}`;
  const lines = [
    `boocoder ${s.version} is running (pid ${s.pid}, up ${formatDuration(now - Date.parse(s.startedAt))})`,
    `  url       ${s.url}`,
    `  database  ${s.database}`,
    `  tasks     ${count('pending')} pending, ${count('running')} running, ${count('blocked')} blocked`,
  ];
  for (const t of s.running)
    lines.push(
      `    running ${t.id}  ${t.agent}  for ${t.startedAt ? formatDuration(now - Date.parse(t.startedAt)) : '?'}`,
    );
  lines.push(`  warm      ${s.warm.count} agent process${s.warm.count === 1 ? '' : 'es'}`);
  for (const a of s.warm.agents)
    lines.push(
      `    ${a.agent}  chat ${a.chatId}  pid ${a.pid ?? '?'}  ${mib(a.memoryBytes)}  idle ${formatDuration(a.idleMs)}  ${a.tasksRun} task${a.tasksRun === 1 ? '' : 's'}`,
    );
  return `${lines.join('\n')}\n`;
}

/** The live daemon of this home, or E_NOT_RUNNING saying how to start one. */
export async function requireLiveDaemon(config: Config): Promise<DaemonInfo> {
  const live = await findLiveDaemon(config.home);
  if (live) return live;
  const stale = await readDaemonInfo(config.home);
  throw new BoocoderError(
    'E_NOT_RUNNING',
    `boocoder is not running for ${config.home}${stale ? ` (daemon.json names pid ${stale.pid}, which is gone)` : ''}; start it with \`boocoder serve\`, or let a client start it over stdio`,
  );
}

export async function runStatus(config: Config, out: NodeJS.WritableStream): Promise<void> {
  const info = await requireLiveDaemon(config);
  const control = controlSocketPath(config.home, info.pid);
  if (!control) {
    out.write(
      `boocoder ${info.version ?? '(older version)'} is running (pid ${info.pid})\n  url       ${info.url}\n  (the home path is too long for the control socket: no queue details)\n`,
    );
    return;
  }
  const status = (await requestDaemonStatus(control, STATUS_TIMEOUT_MS)) as DaemonStatus;
  out.write(formatStatus(status, Date.now()));
}
