/**
 * The warm `opencode serve` backend: ONE opencode HTTP server for every worktree (each request
 * names its `?directory=`), driven over its API and its event stream (read once for all turns)
 * instead of one ACP process per task. A session keeps its conversation between turns. Starting
 * the server and its HTTP client: process.ts; reading a turn from the events:
 * events.ts; answering its permission requests (default policy, or a human under
 * `ask`): permissions.ts.
 *
 * Turn end: POST /session/:id/abort sent before a prompt's loop has started yields an idle that
 * ends nothing (the loop then starts anyway), and an aborted turn sends a late second idle. So an
 * idle counts only after the turn's own busy, and only while GET /session/status does not show the
 * session busy again; a cancel sent before the busy is sent again on it.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { BoocoderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { type PermissionAsker, PermissionResponder } from '../../permissions/responder.js';
import { type AgentTurnResult, DEFAULT_MAX_OUTPUT_CHARS } from '../agent-backend.js';
import { agentExited, agentTimedOut, type ExitStatus } from '../agent-errors.js';
import type { TailBuffer } from '../capped-output.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import { terminateProcessGroup } from '../process-group.js';
import { Interrupted, interruptible } from '../turn-interruption.js';
import { type ActiveTurn, activeTurn, checkedDirectory, turnResult } from './active-turn.js';
import { OpencodeTurnRecord, parseServeEvent, type TurnAction } from './events.js';
import { answerServePermission } from './permissions.js';
import {
  assertModelOffered,
  checkedId,
  openSession,
  ServeApi,
  type SpawnServeInput,
  spawnServe,
  waitForListening,
} from './process.js';

export interface OpencodeServerOptions extends SpawnServeInput {
  logger: Logger;
  /** Budget for start-up: listening, answering, event stream open. */
  startTimeoutMs?: number;
  /** SIGTERM-to-SIGKILL grace when the server's process group is stopped. */
  killGraceMs?: number;
  maxOutputChars?: number;
}

export interface OpencodeTurnOptions {
  /** The worktree, absolute; it must exist. */
  directory: string;
  /** The session of an earlier turn in the same directory, to continue its conversation. */
  sessionId?: string;
  prompt: string;
  /** "provider/model" in opencode's naming; the session keeps it for later turns. */
  model?: string;
  signal?: AbortSignal;
  timeoutMs: number;
  /** How long a cancelled turn gets to end after POST /abort before it is reported anyway. */
  cancelGraceMs?: number;
  /**
   * Gets the requests the default policy allows (the `ask` policy: a human answers); without it
   * they are allowed once. Requests the policy refuses are refused either way.
   */
  asker?: PermissionAsker;
}

const DEFAULT_START_TIMEOUT_MS = 120_000;
const DEFAULT_CANCEL_GRACE_MS = 10_000;
/** After the event stream breaks, how long to wait for the exit status that explains it. */
const EXIT_STATUS_WAIT_MS = 1000;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** One running `opencode serve`. Start it with OpencodeServer.start; close() stops its group. */
export class OpencodeServer {
  version = '';
  readonly exited: Promise<ExitStatus>;
  private api: ServeApi | undefined;
  private readonly turns = new Map<string, ActiveTurn>();
  private readonly stopped = new AbortController();
  private failure: BoocoderError | undefined;
  private closing: Promise<void> | undefined;
  private exitStatus: ExitStatus | undefined;

  private constructor(
    readonly spec: AgentLaunchSpec,
    private readonly child: ChildProcess,
    output: TailBuffer,
    private readonly o: OpencodeServerOptions,
  ) {
    this.exited = new Promise((resolveExit) =>
      child.once('exit', (exitCode, signal) => {
        this.exitStatus = { exitCode, signal };
        const phase = this.api ? 'a turn' : 'start-up';
        this.fail(agentExited(spec, phase, this.exitStatus, output.lastLines(), undefined));
        resolveExit(this.exitStatus);
      }),
    );
  }

  /** Starts the server on 127.0.0.1 (see spawnServe) and waits until its event stream is open. */
  static async start(o: OpencodeServerOptions): Promise<OpencodeServer> {
    const { child, output, auth, release } = await spawnServe(o);
    const server = new OpencodeServer(o.spec, child, output, o);
    const timeoutMs = o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const timer = setTimeout(() => server.stopped.abort(), timeoutMs);
    try {
      const url = await waitForListening(child, output, server.stopped.signal);
      const api = new ServeApi(url, auth, o.spec, server.stopped.signal);
      await server.connect(api);
      release(true);
      return server;
    } catch (err) {
      release(false);
      const timedOut = server.stopped.signal.aborted && !server.failure;
      // Why it failed, before close() records its own "stopped" over it: the server's exit, or err.
      const cause = server.exitStatus ? server.failure : err;
      await server.close();
      if (!timedOut) throw cause;
      throw new BoocoderError(
        'E_AGENT_TIMEOUT',
        `agent "${o.spec.name}": its opencode server did not start within ${timeoutMs} ms and was stopped`,
        { outputTail: output.lastLines() },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Health check, then the event stream. opencode prints its address a moment before every route
   * answers (seen on a loaded machine), so a refusal is retried until the start deadline aborts
   * `stopped`; a server that exited is not waited for.
   */
  private async connect(api: ServeApi): Promise<void> {
    for (;;) {
      try {
        const health = await api.call('GET', '/global/health');
        this.version = isObject(health) ? String(health.version ?? '').slice(0, 100) : '';
        const { ended } = await api.openEvents((data) => this.route(data));
        ended.catch((err: unknown) => this.lostEvents(err));
        this.api = api;
        return;
      } catch (err) {
        if (this.exitStatus || this.stopped.signal.aborted) throw err;
        this.o.logger.debug('opencode serve not ready yet', { err });
        await delay(200, undefined, { signal: this.stopped.signal }).catch(() => {});
      }
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Runs one prompt turn in `directory`, in a new session or in `sessionId`'s. */
  async runTurn(o: OpencodeTurnOptions): Promise<AgentTurnResult> {
    if (this.failure) throw this.failure;
    const directory = await checkedDirectory(o.directory);
    const stop = interruptible(o.signal, o.timeoutMs);
    let turn: ActiveTurn | undefined;
    try {
      const sessionId = await stop.untilStopped(openSession(this.client, directory, o.sessionId));
      if (o.model) await stop.untilStopped(assertModelOffered(this.client, this.spec, directory, o.model));
      turn = this.beginTurn(sessionId, directory, o.asker);
      await stop.untilStopped(this.sendPrompt(turn, o));
      await stop.untilStopped(turn.done);
      return turnResult(this.spec, this.version, turn);
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      // A request still waiting for a human is refused before the abort: nothing is allowed late.
      turn?.permissions.endTurn();
      const grace = o.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
      const endedCleanly = turn ? await this.stopTurn(turn, grace) : true;
      if (err.reason === 'timeout') throw agentTimedOut(this.spec, o.timeoutMs, endedCleanly);
      if (turn) return turnResult(this.spec, this.version, turn, 'cancelled');
      const agentSessionId = o.sessionId ?? null;
      return { stopReason: 'cancelled', agentSessionId, outputText: '', outputTruncated: false, updates: 0 };
    } finally {
      stop.dispose();
      turn?.permissions.endTurn();
      if (turn) this.turns.delete(turn.record.root);
    }
  }

  /** Stops the server's whole process group; turns still running fail with E_AGENT_FAILED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const message = `agent "${this.spec.name}": its opencode server was stopped; retry the task`;
      this.fail(new BoocoderError('E_AGENT_FAILED', message));
      this.stopped.abort();
      await terminateProcessGroup(this.child, { graceMs: this.o.killGraceMs ?? 2000 });
    })();
    return this.closing;
  }

  private fail(err: BoocoderError): void {
    this.failure ??= err;
    for (const turn of this.turns.values()) turn.fail(this.failure);
  }

  private async lostEvents(cause: unknown): Promise<void> {
    if (this.closing) return;
    // The stream usually breaks because the server died: its exit status tells more.
    await Promise.race([this.exited, delay(EXIT_STATUS_WAIT_MS)]);
    const message = `agent "${this.spec.name}": its opencode server's event stream broke; the server was stopped, retry the task`;
    this.fail(new BoocoderError('E_AGENT_FAILED', message, { cause: String(cause).slice(0, 500) }));
    await this.close();
  }

  /** The API client while the server is usable; otherwise throws why it is not. */
  private get client(): ServeApi {
    if (this.failure || !this.api) throw this.failure;
    return this.api;
  }

  private route(data: string[]): void {
    for (const item of data) {
      const event = parseServeEvent(item);
      const turn = event && [...this.turns.values()].find((t) => t.record.concerns(event));
      const action = turn && event ? turn.record.apply(event) : undefined;
      if (turn && action)
        this.act(turn, action).catch((err: unknown) =>
          this.o.logger.warn('an opencode server request failed', { err }),
        );
    }
  }

  private async act(turn: ActiveTurn, action: TurnAction): Promise<void> {
    const query = { directory: turn.directory };
    if (action.kind === 'busy' && turn.cancelling) await this.abort(turn);
    else if (action.kind === 'idle' && !(await this.sessionBusy(turn))) turn.finish();
    else if (action.kind === 'permission') {
      const path = `/permission/${checkedId('permission', action.request.id)}/reply`;
      // May wait for a human (the `ask` policy) for as long as the turn lasts.
      const reply = await answerServePermission(turn.permissions, action.request, turn.directory);
      await this.client.call('POST', path, query, { reply });
    } else if (action.kind === 'question') {
      // Nobody is there to answer: the agent carries on without.
      await this.client.call('POST', `/question/${checkedId('question', action.id)}/reject`, query);
    }
  }

  private async sessionBusy(turn: ActiveTurn): Promise<boolean> {
    const status = await this.client.call('GET', '/session/status', { directory: turn.directory });
    const mine = isObject(status) ? status[turn.record.root] : undefined;
    return isObject(mine) && mine.type !== 'idle';
  }

  private beginTurn(sessionId: string, directory: string, asker: PermissionAsker | undefined): ActiveTurn {
    if (this.turns.has(sessionId)) {
      const message = `opencode session ${sessionId} is already running a turn; wait for it to end`;
      throw new BoocoderError('E_INVALID_INPUT', message);
    }
    const max = this.o.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS;
    const permissions = new PermissionResponder(directory, this.o.logger);
    permissions.beginTurn(asker);
    const turn = activeTurn(new OpencodeTurnRecord(sessionId, Date.now(), max), directory, permissions);
    this.turns.set(sessionId, turn);
    return turn;
  }

  private async sendPrompt(turn: ActiveTurn, o: OpencodeTurnOptions): Promise<void> {
    const slash = o.model?.indexOf('/') ?? -1;
    const model =
      o.model && slash > 0
        ? { providerID: o.model.slice(0, slash), modelID: o.model.slice(slash + 1) }
        : undefined;
    const body = { parts: [{ type: 'text', text: o.prompt }], ...(model ? { model } : {}) };
    await this.client.call(
      'POST',
      `/session/${turn.record.root}/prompt_async`,
      { directory: turn.directory },
      body,
    );
  }

  /** POST /abort, then up to `graceMs` for the turn to end. True when it did. */
  private async stopTurn(turn: ActiveTurn, graceMs: number): Promise<boolean> {
    turn.cancelling = true;
    await this.abort(turn);
    const grace = new AbortController();
    const ended = await Promise.race([
      turn.done.then(
        () => true,
        () => false,
      ),
      delay(graceMs, false, { signal: grace.signal }),
    ]);
    grace.abort();
    return ended;
  }

  private async abort(turn: ActiveTurn): Promise<void> {
    try {
      await this.client.call('POST', `/session/${turn.record.root}/abort`, { directory: turn.directory });
    } catch (err) {
      this.o.logger.warn('could not abort an opencode turn', { err });
    }
  }
}
