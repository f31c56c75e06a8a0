/**
 * Shared pieces for the real-client checks (conformance suite, Claude Code, opencode): boocoder's
 * HTTP endpoint in this process (one without a token, one with), a command runner that never
 * leaves a process behind, and the clean-up of a daemon that a client's `boocoder stdio` started.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate } from '../../src/db/migrate.js';
import { IN_MEMORY, openPgliteDb } from '../../src/db/pglite.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
import { startTestBoocoder, type TestBoocoder } from './boocoder-app.js';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const BOOCODER_BIN = join(REPO_ROOT, 'bin', 'boocoder.js');
export const CLIENT_TEST_TOKEN = 'client-test-token-0123456789';

export interface ClientTestServers {
  /** `/mcp` without a token. */
  openUrl: string;
  /** `/mcp` requiring `Authorization: Bearer CLIENT_TEST_TOKEN`. */
  tokenUrl: string;
  close(): Promise<void>;
}

/**
 * One boocoder (app and dispatcher on an in-memory PGlite) behind two HTTP endpoints: the
 * clients under test only connect and list, so which database backs it does not matter here.
 */
export async function startClientTestServers(): Promise<ClientTestServers> {
  const db = await openPgliteDb({ dataDir: IN_MEMORY, logger: silentLogger });
  let boo: TestBoocoder | undefined;
  let open: RunningHttpServer | undefined;
  try {
    await migrate(db, { logger: silentLogger });
    boo = await startTestBoocoder(db, { BOOCODER_TOKEN: CLIENT_TEST_TOKEN });
    const app = boo.app;
    open = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      allowedOrigins: [],
      maxSessions: 20,
      sessionIdleMs: 60_000,
      logger: createLogger(boo.config.logLevel, { test: true }),
      createMcpServer: () => createServer(app.deps),
    });
  } catch (err) {
    await boo?.close();
    await db.close();
    throw err;
  }
  const started = { boo, open };
  return {
    openUrl: open.url,
    tokenUrl: boo.http.url,
    async close() {
      await started.open.close();
      await started.boo.close();
      await db.close();
    },
  };
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion. It gets its own process group so that, on timeout, the whole
 * group (the client and any MCP server it launched) is killed rather than orphaned.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`${command} ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      resolve({ code, stdout, stderr });
    });
  });
}

/** Removes terminal colour and cursor sequences, so status lines can be matched as plain text. */
export function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching escape sequences is the point
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
}

/** A PATH whose `node` is the Node 20 running the tests, so `node …` in a client config means it. */
export function pathWithThisNode(): string {
  return [dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(':');
}

/** Running and not a zombie (a container's pid 1 may never reap an orphaned daemon). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Only a process that is still a boocoder is signalled: a pid may have been reused since. */
async function isBoocoderProcess(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(BOOCODER_BIN);
}

/**
 * Every daemon pid `home` has seen: daemon.json names the live one, and each daemon.log line
 * carries its writer's pid (daemon.json is gone once a daemon has shut down).
 */
export async function daemonPids(home: string): Promise<number[]> {
  const pids = new Set<number>();
  const info = await readFile(join(home, 'daemon.json'), 'utf8').catch(() => '');
  const fromInfo = /"pid":\s*(\d+)/.exec(info)?.[1];
  if (fromInfo) pids.add(Number(fromInfo));
  const log = await readFile(join(home, 'daemon.log'), 'utf8').catch(() => '');
  for (const m of log.matchAll(/"pid":\s*(\d+)/g)) pids.add(Number(m[1]));
  return [...pids];
}

/** SIGTERMs the daemons a client's `boocoder stdio` started under `home`, waits, then removes it. */
export async function stopDaemonsAndRemove(home: string): Promise<void> {
  for (const pid of await daemonPids(home)) {
    if (!isAlive(pid) || !(await isBoocoderProcess(pid))) continue;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 300 && isAlive(pid); i++) await sleep(50);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  // A daemon that was still starting (not yet in daemon.json) may write its data dir meanwhile:
  // rm then fails with ENOTEMPTY, and retrying lets it finish.
  await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/** Runs every cleanup step even when one fails (a failed step must not leak the rest), then rethrows. */
export async function cleanUpAll(steps: Array<() => Promise<unknown> | undefined>): Promise<void> {
  const results = await Promise.allSettled(steps.map((step) => step()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The daemon pids under `home` that are still running boocoder. */
export async function liveDaemonPids(home: string): Promise<number[]> {
  const live: number[] = [];
  for (const pid of await daemonPids(home)) {
    if (isAlive(pid) && (await isBoocoderProcess(pid))) live.push(pid);
  }
  return live;
}

/**
 * Waits (up to `timeoutMs`) until a daemon under `home` is running boocoder and returns the live
 * pids: a client's connection check answers before the daemon it starts is up.
 */
export async function waitForLiveDaemon(home: string, timeoutMs = 150_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await liveDaemonPids(home);
    if (live.length > 0 || Date.now() > deadline) return live;
    await sleep(200);
  }
}
