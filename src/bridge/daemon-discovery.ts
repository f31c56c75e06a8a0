/**
 * Finding (or starting) the local daemon that owns the embedded database. Claude Code starts
 * one `boocoder stdio` per conversation, but the embedded database opens in one process only, so
 * each of those is a thin bridge to a single `boocoder serve` that advertises itself in
 * `<home>/daemon.json`.
 */
import { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { isLoopbackHost } from '../config.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { isProcessAlive } from '../process-liveness.js';
import { tryAcquireStartLock } from './start-lock.js';

export const DAEMON_INFO_FILE = 'daemon.json';
export const DAEMON_LOG_FILE = 'daemon.log';
/** /healthz is trivial: a daemon that cannot answer it within this is not usable anyway. */
const PROBE_TIMEOUT_MS = 1000;
const MIN_LOCK_STALE_MS = 60_000;

const daemonInfoSchema = z.object({
  pid: z.number().int().positive(),
  url: z.string().max(2048),
  token: z.string().max(512).optional(),
  /** The daemon's MCP socket (socket-server.ts); absent when the home path is too long for one. */
  socket: z.string().max(512).optional(),
  startedAt: z.string().max(64),
  /** The daemon's boocoder version; absent in files written before it was recorded. */
  version: z.string().max(64).optional(),
  /** The database it runs on, without credentials (`embedded`, or `postgres host:port/db`). */
  database: z.string().max(512).optional(),
});
export type DaemonInfo = z.infer<typeof daemonInfoSchema>;

export function daemonInfoPath(home: string): string {
  return join(home, DAEMON_INFO_FILE);
}

/**
 * Writes daemon.json atomically (temp file + rename: a reader never sees half a file) and
 * readable by its owner only, since it carries the token.
 */
export async function writeDaemonInfo(home: string, info: DaemonInfo): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 });
  const tmp = join(home, `.${DAEMON_INFO_FILE}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(info)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, daemonInfoPath(home));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** True for `http://<loopback>:<port>/...`: the bridge talks only to a daemon on this machine. */
function isLocalHttpUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname);
  } catch {
    return false;
  }
}

/**
 * Reads daemon.json, or undefined when it is missing, malformed or unsafe. Unsafe means a file
 * another local user could have planted or edited (not ours, writable by group/others, a
 * symlink) or a URL off this machine: either would send the user's MCP traffic, token
 * included, to someone else's server.
 */
export async function readDaemonInfo(home: string, logger?: Logger): Promise<DaemonInfo | undefined> {
  const path = daemonInfoPath(home);
  let raw: string;
  try {
    const st = await lstat(path);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
      logger?.warn('ignoring daemon.json: not a private regular file owned by this user', { path });
      return undefined;
    }
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger?.warn('cannot read daemon.json', { err });
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    logger?.warn('ignoring daemon.json: not valid JSON', { path });
    return undefined;
  }
  const parsed = daemonInfoSchema.safeParse(json);
  if (!parsed.success || !isLocalHttpUrl(parsed.data.url)) {
    logger?.warn('ignoring daemon.json: unexpected content', { path });
    return undefined;
  }
  return parsed.data;
}

/**
 * Removes daemon.json. With `ownerPid`, only when the file still names that process, so a
 * daemon shutting down never deletes the file of the daemon that replaced it.
 */
export async function removeDaemonInfo(home: string, ownerPid?: number): Promise<void> {
  if (ownerPid !== undefined) {
    const info = await readDaemonInfo(home);
    if (info?.pid !== ownerPid) return;
  }
  await rm(daemonInfoPath(home), { force: true });
}

/** The pid a boocoder daemon reports on /healthz at `mcpUrl`'s origin, or undefined. */
export async function probeDaemonHealth(mcpUrl: string, timeoutMs: number): Promise<number | undefined> {
  try {
    const res = await fetch(new URL('/healthz', mcpUrl), {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const body = (await res.json()) as { ok?: unknown; service?: unknown; pid?: unknown };
    return body.ok === true && body.service === 'boocoder' && typeof body.pid === 'number'
      ? body.pid
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The daemon advertised in daemon.json when it is really there: its pid is alive and /healthz at
 * its URL answers with that same pid (a reused pid or a stranger on the port do not count).
 */
export async function findLiveDaemon(
  home: string,
  probeTimeoutMs = PROBE_TIMEOUT_MS,
  logger?: Logger,
): Promise<DaemonInfo | undefined> {
  const info = await readDaemonInfo(home, logger);
  if (!info || !isProcessAlive(info.pid)) return undefined;
  return (await probeDaemonHealth(info.url, probeTimeoutMs)) === info.pid ? info : undefined;
}

export interface ConnectToDaemonOptions {
  home: string;
  /**
   * Starts a daemon that will write daemon.json. Returning the ChildProcess (or the daemon's pid)
   * lets a daemon that dies during start-up fail the wait at once instead of at the timeout.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: starters that report nothing return Promise<void>
  startDaemon: () => ChildProcess | Promise<void | number>;
  timeoutMs: number;
  logger: Logger;
  pollMs?: number;
}

function unavailable(cause?: unknown): BoocoderError {
  return new BoocoderError(
    'E_DAEMON_UNAVAILABLE',
    'could not start the boocoder daemon; run `boocoder logs` to see why',
    {},
    { cause },
  );
}

async function startAndWait(options: ConnectToDaemonOptions, deadline: number, pollMs: number) {
  const { home, logger } = options;
  // Another bridge may have finished starting one between our check and taking the lock.
  const already = await findLiveDaemon(home, PROBE_TIMEOUT_MS, logger);
  if (already) return already;
  logger.info('starting the boocoder daemon', { home });
  let child: ChildProcess | undefined;
  let pid: number | undefined;
  try {
    const started = await options.startDaemon();
    child = started instanceof ChildProcess ? started : undefined;
    pid = typeof started === 'number' ? started : undefined;
  } catch (err) {
    throw unavailable(err);
  }
  let exited = child !== undefined && child.exitCode !== null;
  const onExit = () => {
    exited = true;
  };
  child?.once('exit', onExit);
  try {
    while (Date.now() < deadline) {
      const live = await findLiveDaemon(home, PROBE_TIMEOUT_MS, logger);
      if (live) return live;
      if (exited || (pid !== undefined && !isProcessAlive(pid))) {
        logger.error('the boocoder daemon exited during start-up', { code: child?.exitCode });
        break;
      }
      await sleep(pollMs);
    }
  } finally {
    child?.off('exit', onExit);
  }
  throw unavailable();
}

/** Connects to the live daemon in `home`, starting one (exactly one, across processes) if none. */
export async function connectToDaemon(options: ConnectToDaemonOptions): Promise<DaemonInfo> {
  const { home, timeoutMs, logger } = options;
  const pollMs = options.pollMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  await mkdir(home, { recursive: true, mode: 0o700 });
  // A live holder keeps the lock at most its own timeout; only a hung one outlives this.
  const lockStaleMs = Math.max(timeoutMs, MIN_LOCK_STALE_MS);
  for (let first = true; ; first = false) {
    const live = await findLiveDaemon(home, PROBE_TIMEOUT_MS, logger);
    if (live) return live;
    if (!first && Date.now() >= deadline) throw unavailable();
    const release = await tryAcquireStartLock(home, lockStaleMs);
    if (release) {
      try {
        return await startAndWait(options, deadline, pollMs);
      } finally {
        await release();
      }
    }
    // Another process is starting the daemon: wait for it to show up (or for its lock to go stale).
    await sleep(pollMs);
  }
}
