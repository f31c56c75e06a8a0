/**
 * One live ACP agent process with one session: spawn, initialize, session/new and model selection
 * once, then any number of session/prompt turns, then close (stop the whole process group). Kept
 * open between tasks it is a warm session (see warm-sessions.ts); runAcpTask uses it for one turn.
 */
import type { ChildProcess } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import * as acp from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { PermissionResponder } from '../../permissions/responder.js';
import { type AgentInfo, type AgentTurnResult, DEFAULT_MAX_OUTPUT_CHARS } from '../agent-backend.js';
import {
  agentExited,
  agentRejected,
  agentSpawnFailed,
  agentTimedOut,
  type ExitStatus,
} from '../agent-errors.js';
import { emitTo } from '../agent-events.js';
import { TailBuffer } from '../capped-output.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from '../process-group.js';
import { Interrupted, interruptible } from '../turn-interruption.js';
import { authenticateBeforeSession } from './authenticate.js';
import { agentInfoOf, INITIALIZE_PARAMS } from './client-info.js';
import { acpEventOf } from './events.js';
import { applySessionConfig } from './session-config.js';
import { startAcpSession } from './session-start.js';
import { type AcpPromptOptions, type OpenAcpSessionOptions, resultOf } from './session-types.js';
import { AcpTurnRecord } from './turn-record.js';

const STDERR_TAIL_BYTES = 16 * 1024;
/** After the connection drops, how long to wait for the exit status that explains it. */
const EXIT_STATUS_WAIT_MS = 1000;

/** A live agent process with an open ACP session. Turns must not overlap. */
export class AcpSession {
  agentSessionId: string | null = null;
  agentInfo: AgentInfo | undefined;
  private exitStatus: ExitStatus | undefined;
  private closing: Promise<void> | undefined;
  private exitedUnasked = false;
  private record: AcpTurnRecord;
  /** The first turn's record also counts the updates sent during setup. */
  private prompted = false;
  private onUpdate: AcpPromptOptions['onUpdate'];
  private onEvent: AcpPromptOptions['onEvent'];
  private onUsage: AcpPromptOptions['onUsage'];
  private readonly permissions: PermissionResponder;
  readonly exited: Promise<ExitStatus>;
  readonly connection: ReturnType<ReturnType<typeof acp.client>['connect']>;

  constructor(
    readonly spec: AgentLaunchSpec,
    private readonly child: ChildProcess,
    private readonly stderr: TailBuffer,
    private readonly log: Logger,
    private readonly options: OpenAcpSessionOptions,
  ) {
    this.record = new AcpTurnRecord(options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS);
    this.permissions = new PermissionResponder(options.cwd, log);
    this.exited = new Promise<ExitStatus>((resolve) =>
      child.once('exit', (exitCode, signal) => {
        this.exitStatus = { exitCode, signal };
        this.exitedUnasked = this.closing === undefined;
        resolve(this.exitStatus);
      }),
    );
    const app = acp
      .client({ name: 'boocoder' })
      .onRequest(acp.methods.client.session.requestPermission, ({ params }) =>
        this.permissions.answer(params),
      )
      .onNotification(acp.methods.client.session.update, ({ params }) => {
        this.record.add(params.update);
        emitTo(this.onEvent, acpEventOf(params.update));
        try {
          this.onUpdate?.(params.update);
          const usage = this.onUsage && this.record.usage(undefined);
          if (usage) this.onUsage?.(usage);
        } catch (err) {
          this.log.warn('onUpdate callback failed', { err });
        }
      });
    this.connection = app.connect(
      acp.ndJsonStream(
        Writable.toWeb(child.stdin as NonNullable<typeof child.stdin>) as WritableStream<Uint8Array>,
        Readable.toWeb(child.stdout as NonNullable<typeof child.stdout>) as ReadableStream<Uint8Array>,
      ),
    );
  }

  private freshRecord(costBefore: number): AcpTurnRecord {
    return new AcpTurnRecord(this.options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS, costBefore);
  }

  /** The agent's pid, the leader (and id) of its process group. */
  get pid(): number {
    return this.child.pid as number;
  }

  /** False once the process exited, the connection dropped or close() began: never prompt it then. */
  get alive(): boolean {
    return this.exitStatus === undefined && !this.connection.signal.aborted && this.closing === undefined;
  }

  /** True when the process exited without close() asking it to: a crash, not a shutdown. */
  get crashed(): boolean {
    return this.exitedUnasked;
  }

  /** initialize, session/new and the session's configuration: throws Interrupted or a BoocoderError. */
  async setUp(untilStopped: <T>(work: Promise<T>) => Promise<T>): Promise<void> {
    const agent = this.connection.agent;
    let phase = 'initialize';
    try {
      const init = await untilStopped(agent.request(acp.methods.agent.initialize, INITIALIZE_PARAMS));
      this.agentInfo = agentInfoOf(init);
      phase = 'authenticate';
      await authenticateBeforeSession(agent, this.spec, init, this.options.env, untilStopped);
      phase = 'session/new';
      const started = await startAcpSession(agent, {
        cwd: this.options.cwd,
        resumeSessionId: this.options.resumeSessionId,
        canLoad: init.agentCapabilities?.loadSession === true,
        mcpServers: this.options.mcpServers ?? [],
        untilStopped,
        log: this.log,
      });
      const session = started.response;
      // A loaded session's replayed history belongs to earlier tasks: only its running cost carries over.
      if (started.resumed) this.record = this.freshRecord(this.record.sessionCost);
      this.agentSessionId = session.sessionId;
      this.options.reachedSession?.(true);
      phase = 'session configuration';
      const { model, mode, thinking, features } = this.options;
      const sent = await applySessionConfig(
        agent,
        this.spec.name,
        session,
        { model, mode, thinking, features },
        untilStopped,
      );
      this.log.debug('session configured', { model, mode, thinking, features, requests: sent.length });
    } catch (err) {
      throw await this.mapError(err, phase);
    }
  }

  /** One session/prompt turn. On a cancel the prompt gets cancelGraceMs, then the process is killed. */
  async prompt(o: AcpPromptOptions): Promise<AgentTurnResult> {
    const sessionId = this.agentSessionId as string;
    if (this.prompted) {
      const costBefore = this.record.sessionCost;
      this.record = this.freshRecord(costBefore);
    }
    this.prompted = true;
    this.onUpdate = o.onUpdate;
    this.onEvent = o.onEvent;
    this.permissions.beginTurn(o.onPermissionRequest, o.onEvent);
    this.onUsage = o.onUsage;
    const turn = interruptible(o.signal, o.timeoutMs);
    const agent = this.connection.agent;
    try {
      if (!this.alive)
        throw agentExited(this.spec, 'session/prompt', this.exitStatus, this.stderr.lastLines(), undefined);
      const prompt = agent.request(acp.methods.agent.session.prompt, {
        sessionId,
        prompt: [{ type: 'text', text: o.text }],
      });
      prompt.catch(() => {});
      try {
        const response = await turn.untilStopped(prompt);
        return resultOf(this.record, response.stopReason, sessionId, response, this.agentInfo);
      } catch (err) {
        if (!(err instanceof Interrupted)) throw err;
        this.permissions.endTurn();
        const response = await cancelPrompt(agent, sessionId, prompt, o.cancelGraceMs ?? 5000);
        this.log.info('agent prompt cancelled', {
          reason: err.reason,
          endedCleanly: response?.stopReason === 'cancelled',
        });
        // A prompt that did not end when asked leaves the agent in an unknown state: stop it.
        if (!response) await this.close();
        if (err.reason === 'timeout') throw agentTimedOut(this.spec, o.timeoutMs, response !== undefined);
        return resultOf(this.record, 'cancelled', sessionId, response, this.agentInfo);
      }
    } catch (err) {
      throw await this.mapError(err, 'session/prompt');
    } finally {
      turn.dispose();
      this.onUpdate = undefined;
      this.onEvent = undefined;
      this.onUsage = undefined;
      this.permissions.endTurn();
    }
  }

  /** The cancelled result of a run stopped before or during setup. */
  cancelledResult(): AgentTurnResult {
    return resultOf(this.record, 'cancelled', this.agentSessionId, undefined, this.agentInfo);
  }

  private async mapError(err: unknown, phase: string): Promise<unknown> {
    if (err instanceof BoocoderError || err instanceof Interrupted) return err;
    if (err instanceof acp.RequestError && !this.connection.signal.aborted)
      return agentRejected(this.spec, phase, err);
    const grace = new AbortController();
    const status = await Promise.race([
      this.exited,
      delay(EXIT_STATUS_WAIT_MS, undefined, { signal: grace.signal }).catch(() => undefined),
    ]);
    grace.abort();
    this.log.warn('agent connection lost', { phase, ...status, err });
    return agentExited(this.spec, phase, status, this.stderr.lastLines(), err);
  }

  /** Stops the agent's whole process group. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.connection.close();
      this.child.stdin?.end();
      const outcome = await terminateProcessGroup(this.child, { graceMs: this.options.killGraceMs ?? 2000 });
      if (outcome === 'lingering') this.log.warn('agent processes survived SIGKILL', { pgid: this.pid });
      this.log.debug('agent stopped', { outcome });
    })();
    return this.closing;
  }
}

/**
 * Starts the agent and opens its session. Undefined when `signal` aborted during setup (the agent
 * is stopped); throws E_AGENT_TIMEOUT, E_AGENT_FAILED or E_AGENT_NOT_FOUND otherwise.
 */
export async function openAcpSession(o: OpenAcpSessionOptions): Promise<AcpSession | undefined> {
  const child = spawnInProcessGroup(o.spec.command, o.spec.args, {
    cwd: o.cwd,
    env: o.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = new TailBuffer(STDERR_TAIL_BYTES);
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  // EPIPE after the agent died is reported through its exit status instead.
  child.stdin?.on('error', () => {});
  try {
    await waitForSpawn(child);
  } catch (err) {
    throw agentSpawnFailed(o.spec, err);
  }
  const log = o.logger.child({ agent: o.spec.name, pid: child.pid });
  log.debug('agent started');
  const session = new AcpSession(o.spec, child, stderr, log, o);
  const setup = interruptible(o.signal, o.timeoutMs);
  try {
    if (o.onSpawn && child.pid !== undefined) await o.onSpawn(child.pid);
    await session.setUp(setup.untilStopped);
    return session;
  } catch (err) {
    await session.close();
    if (!(err instanceof Interrupted)) throw err;
    if (err.reason === 'timeout') throw agentTimedOut(o.spec, o.timeoutMs, false);
    return undefined;
  } finally {
    setup.dispose();
  }
}

/** session/cancel, then up to `graceMs` for the prompt to end; undefined if it did not. */
async function cancelPrompt(
  agent: acp.ClientContext,
  sessionId: string,
  prompt: Promise<acp.PromptResponse>,
  graceMs: number,
): Promise<acp.PromptResponse | undefined> {
  agent.notify(acp.methods.agent.session.cancel, { sessionId }).catch(() => {});
  const grace = new AbortController();
  try {
    return await Promise.race([
      prompt.catch(() => undefined),
      delay(graceMs, undefined, { signal: grace.signal }).catch(() => undefined),
    ]);
  } finally {
    grace.abort();
  }
}
