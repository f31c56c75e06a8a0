/**
 * Real processes for the chaos suite: start a boocoder (or a fixture) in its own process, find the
 * agents it runs through /proc, kill it, and wait (bounded) for things to happen.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { liveGroupMembers, readProcStat } from '../../src/agents/orphaned-agents.js';
import { readDaemonInfo } from '../../src/bridge/daemon-discovery.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BOOCODER_BIN = join(ROOT, 'bin', 'boocoder.js');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Polls `check` until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<ExitStatus>;
  /** What the process wrote to stderr so far (for failure messages). */
  stderr(): string;
  stdout(): string;
}

function track(child: ChildProcess): RunningProcess {
  let err = '';
  let out = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString('utf8')).slice(-20_000);
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-20_000);
  });
  const exited = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  if (child.pid === undefined) throw new Error('the process did not start');
  return { child, pid: child.pid, exited, stderr: () => err, stdout: () => out };
}

/** Runs a TypeScript fixture under tsx with exactly `env`. */
export function startTsxScript(script: string, env: Record<string, string>): RunningProcess {
  return track(
    spawn(process.execPath, ['--import', TSX_LOADER, script], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

/** Resolves once the process printed `ready` (the chaos fixtures do, once started). */
export async function waitForReady(p: RunningProcess): Promise<void> {
  let ended: ExitStatus | undefined;
  void p.exited.then((s) => {
    ended = s;
  });
  await waitFor(`process ${p.pid} to be ready`, () => {
    if (ended) throw new Error(`process ${p.pid} exited (${ended.code}) before it was ready: ${p.stderr()}`);
    return p.stdout().includes('ready\n');
  });
}

/** `boocoder serve --port 0` with exactly `env`; resolves once it has written its daemon.json. */
export async function startServe(
  env: Record<string, string>,
  home: string,
): Promise<RunningProcess & { url: string }> {
  const p = track(
    spawn(process.execPath, [BOOCODER_BIN, 'serve', '--port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let exitedEarly: ExitStatus | undefined;
  void p.exited.then((s) => {
    exitedEarly = s;
  });
  const info = await waitFor(
    'boocoder serve to start',
    async () => {
      if (exitedEarly) throw new Error(`boocoder serve exited early (${exitedEarly.code}): ${p.stderr()}`);
      const found = await readDaemonInfo(home);
      return found?.pid === p.pid ? found : undefined;
      // A first start on the embedded database creates it: slow on a loaded two-CPU machine.
    },
    120_000,
  );
  return { ...p, url: info.url };
}

/** Waits for the process to exit, SIGKILLing it after `ms`; returns how it ended. */
export async function waitForExit(p: RunningProcess, ms: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  const status = await Promise.race([p.exited, late]);
  clearTimeout(timer);
  if (status) return status;
  p.child.kill('SIGKILL');
  throw new Error(`process ${p.pid} did not exit within ${ms} ms; killed it. stderr: ${p.stderr()}`);
}

/** Stops a process if it still runs (cleanup): SIGKILL, then wait for its exit. */
export async function killProcess(p: RunningProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGKILL');
  await p.exited;
}

/** Pids whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** The process groups `pid` leads among its children: the agents a dispatcher process runs. */
export function agentGroupsOf(pid: number): number[] {
  // The embedded PostgreSQL's postmaster is a group leader among serve's children too: not an agent.
  return childrenOf(pid).filter((c) => readProcStat(c)?.pgrp === c && !isPostmaster(c));
}

function isPostmaster(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return false;
  }
}

/** Live members of the group led by `pgid` (any start time). */
export function groupMembers(pgid: number): number[] {
  return liveGroupMembers(pgid, 0);
}

/** Last-resort cleanup for a test that failed half-way: SIGKILL whatever is left in these groups. */
export function killGroups(pgids: number[]): void {
  for (const pgid of pgids) {
    if (groupMembers(pgid).length === 0) continue;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
