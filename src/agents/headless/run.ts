/**
 * One agent turn as a one-shot headless process (the `pty` execution path): spawn the agent's CLI
 * in the worktree, in its own process group, prompt on stdin, read its JSON lines, and stop the
 * whole group when the turn ends, is cancelled or runs out of time. The result has the shape of an
 * ACP run so the dispatcher records both the same way.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { BoocoderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AgentTurnResult } from '../agent-backend.js';
import { agentSpawnFailed, agentTimedOut, type ExitStatus } from '../agent-errors.js';
import { TailBuffer } from '../capped-output.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from '../process-group.js';
import { Interrupted, interruptible } from '../turn-interruption.js';
import { feedLine, HeadlessTurn } from './parsers.js';
import { buildHeadlessCommand, type HeadlessCommand, type HeadlessRequest } from './specs.js';

export interface RunHeadlessOptions extends HeadlessRequest {
  spec: AgentLaunchSpec;
  /** The worktree the agent works in (checked by the caller). */
  cwd: string;
  prompt: string;
  /** The agent's full environment (see buildAgentEnv). */
  env: Readonly<Record<string, string>>;
  /** Aborting stops the process group; the run then ends as cancelled. */
  signal?: AbortSignal;
  timeoutMs: number;
  logger: Logger;
  /** Called with the group leader's pid before the turn runs (see orphaned-agents.ts). */
  onSpawn?: (pid: number) => void | Promise<void>;
  killGraceMs?: number;
  /** A longer stdout line is skipped: no JSON event of interest is that large. */
  maxLineBytes?: number;
}

const STDERR_TAIL_BYTES = 16 * 1024;
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** After the group is gone, how long stdout may take to deliver its last bytes. */
const DRAIN_WAIT_MS = 1000;

/**
 * Splits a byte stream into lines, holding at most `maxLineBytes` of an unfinished line: an agent
 * printing one endless line must not grow the buffer without bound (it is dropped instead).
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      this.append(chunk.subarray(start, nl));
      if (!this.skipping) this.onLine(Buffer.concat(this.pending).toString('utf8'));
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = false;
      start = nl + 1;
    }
    this.append(chunk.subarray(start));
  }

  /** The last line, when the stream ended without a newline. */
  end(): void {
    if (!this.skipping && this.pendingBytes > 0) this.onLine(Buffer.concat(this.pending).toString('utf8'));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private append(part: Buffer): void {
    if (this.skipping || part.length === 0) return;
    if (this.pendingBytes + part.length > this.maxLineBytes) {
      this.skipping = true;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.pending.push(part);
    this.pendingBytes += part.length;
  }
}

function resultOf(turn: HeadlessTurn, stopReason: 'end_turn' | 'cancelled'): AgentTurnResult {
  return {
    stopReason,
    agentSessionId: turn.sessionId ?? null,
    outputText: turn.outputText,
    outputTruncated: turn.outputTruncated,
    updates: turn.events,
    ...(turn.hasUsage
      ? {
          usage: {
            inputTokens: turn.inputTokens,
            outputTokens: turn.outputTokens,
            ...(turn.cost !== undefined ? { cost: turn.cost, currency: 'USD' } : {}),
          },
        }
      : {}),
  };
}

/**
 * Why a finished process did not produce a successful turn. The message names what failed and
 * carries nothing the agent printed (it may hold host paths, tokens or prompt text): that goes in
 * details, with the end of stderr.
 */
function turnFailure(
  spec: AgentLaunchSpec,
  turn: HeadlessTurn,
  status: ExitStatus,
  stderrTail: string[],
): BoocoderError {
  const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.exitCode}`;
  const what =
    turn.end && !turn.end.ok
      ? `${turn.end.problem} and ${how}`
      : `${how} without reporting a successful result`;
  return new BoocoderError(
    'E_AGENT_FAILED',
    `agent "${spec.name}" (headless) ${what}; details hold its message and the end of its stderr`,
    {
      exitCode: status.exitCode,
      signal: status.signal,
      events: turn.events,
      sessionSeen: turn.sessionId !== undefined,
      agentError: turn.end && !turn.end.ok ? (turn.end.detail ?? null) : null,
      stderrTail,
    },
  );
}

function succeeded(cmd: HeadlessCommand, turn: HeadlessTurn, status: ExitStatus): boolean {
  if (turn.end) return turn.end.ok;
  return !cmd.needsResultLine && status.exitCode === 0 && status.signal === null;
}

/** Waits for stdout to end (every line parsed), but not forever: an escaped process may hold it. */
async function drain(child: ChildProcess): Promise<void> {
  const stdout = child.stdout;
  if (!stdout || stdout.readableEnded || stdout.destroyed) return;
  const grace = new AbortController();
  await Promise.race([
    once(stdout, 'close').catch(() => undefined),
    delay(DRAIN_WAIT_MS, undefined, { signal: grace.signal }).catch(() => undefined),
  ]);
  grace.abort();
  stdout.destroy();
  child.stderr?.destroy();
}

/**
 * Runs one turn. Resolves with stopReason end_turn, or cancelled when `signal` aborted; throws
 * E_AGENT_TIMEOUT, E_AGENT_NOT_FOUND, E_INVALID_INPUT (no headless mode, unsafe model) or
 * E_AGENT_FAILED. The agent's process group is gone when it returns.
 */
export async function runHeadlessTask(o: RunHeadlessOptions): Promise<AgentTurnResult> {
  const cmd = buildHeadlessCommand(o.spec, {
    ...(o.model ? { model: o.model } : {}),
    ...(o.resumeSessionId ? { resumeSessionId: o.resumeSessionId } : {}),
  });
  const turn = new HeadlessTurn();
  const child = spawnInProcessGroup(cmd.command, cmd.args, {
    cwd: o.cwd,
    env: o.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = new TailBuffer(STDERR_TAIL_BYTES);
  const lines = new LineSplitter(o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (line) =>
    feedLine(cmd.parse, line, turn),
  );
  child.stdout?.on('data', (chunk: Buffer) => lines.push(chunk));
  child.stdout?.once('end', () => lines.end());
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  // EPIPE when the agent exits without reading its prompt: its exit status says why.
  child.stdin?.on('error', () => {});
  const exited = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (exitCode, signal) => resolve({ exitCode, signal })),
  );
  try {
    await waitForSpawn(child);
  } catch (err) {
    throw agentSpawnFailed({ ...o.spec, command: cmd.command }, err);
  }
  const log = o.logger.child({ agent: o.spec.name, pid: child.pid, headless: true });
  const stop = interruptible(o.signal, o.timeoutMs);
  const stopGroup = async () => {
    const outcome = await terminateProcessGroup(child, { graceMs: o.killGraceMs ?? 2000 });
    if (outcome === 'lingering') log.warn('agent processes survived SIGKILL', { pgid: child.pid });
  };
  try {
    if (o.onSpawn && child.pid !== undefined) await stop.untilStopped(Promise.resolve(o.onSpawn(child.pid)));
    child.stdin?.end(o.prompt);
    const status = await stop.untilStopped(exited);
    // The turn is over: whatever it left running in its group (a dev server, a watcher) goes too.
    await stopGroup();
    await drain(child);
    log.debug('headless agent exited', { ...status, events: turn.events });
    if (succeeded(cmd, turn, status)) return resultOf(turn, 'end_turn');
    throw turnFailure(o.spec, turn, status, stderr.lastLines());
  } catch (err) {
    // Idempotent: also reached after a failed turn, whose group is already gone.
    await stopGroup();
    await drain(child);
    if (!(err instanceof Interrupted)) throw err;
    log.info('headless agent stopped', { reason: err.reason });
    if (err.reason === 'timeout') throw agentTimedOut(o.spec, o.timeoutMs, false);
    return resultOf(turn, 'cancelled');
  } finally {
    stop.dispose();
  }
}
