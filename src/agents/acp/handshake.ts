/**
 * The probe's ACP handshake with one agent binary: `initialize` (capabilities, MCP-client support,
 * auth methods, agent info), then `session/new` in a throw-away folder (models, modes, and the
 * slash commands of `available_commands_update`). Time-boxed as a whole, with the whole process
 * group killed at the end, a neutral working directory, no shell and a per-message size cap: the
 * binary is whatever sits on PATH under the agent's name, so it is not trusted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import * as acp from '@agentclientprotocol/sdk/unstable';
import type { AgentInfo } from '../agent-backend.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from '../process-group.js';
import { authenticateBeforeSession } from './authenticate.js';
import { agentInfoOf, INITIALIZE_PARAMS } from './client-info.js';
import {
  type ChoiceInfo,
  type ConfigOptionInfo,
  sessionConfigOptions,
  sessionModels,
  sessionModes,
} from './session-config.js';

export interface AcpHandshake {
  /** The binary answered `initialize`: it speaks ACP. */
  speaksAcp: boolean;
  /** `session/new` was refused for want of authentication (ACP error -32000). */
  needsAuth: boolean;
  agentInfo?: AgentInfo;
  authMethods: ChoiceInfo[];
  /** ACP agents must take stdio MCP servers; these say whether HTTP and SSE ones work too. */
  mcpCapabilities?: { http: boolean; sse: boolean };
  loadSession: boolean;
  currentModel: string | null;
  models: ChoiceInfo[];
  modes: ChoiceInfo[];
  /** Other session options (thought level, features), from session/new. */
  configOptions: ConfigOptionInfo[];
  commands: { name: string; description: string }[];
  /** What went wrong, for people: no ACP, a timeout, a crash, a refused session/new. */
  error?: string;
}

export interface AcpHandshakeOptions {
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** Largest single ACP message accepted. */
  maxMessageBytes: number;
  /** After session/new, how long to wait for available_commands_update (bounded by timeoutMs). */
  commandsWaitMs?: number;
  /** The agent's launch spec: its pre-session auth step (acp-authenticate.ts) runs as in tasks. */
  spec?: AgentLaunchSpec;
}

const AUTH_REQUIRED = -32000;
const MAX_COMMANDS = 200;
const cut = (value: unknown, max = 200) => String(value ?? '').slice(0, max);

class TimedOut extends Error {}

function emptyHandshake(): AcpHandshake {
  return {
    speaksAcp: false,
    needsAuth: false,
    authMethods: [],
    loadSession: false,
    currentModel: null,
    models: [],
    modes: [],
    configOptions: [],
    commands: [],
  };
}

/** Runs `path args` as an ACP agent and records what the handshake reveals; never throws. */
export async function acpHandshake(
  path: string,
  args: readonly string[],
  options: AcpHandshakeOptions,
): Promise<AcpHandshake> {
  const result = emptyHandshake();
  // A fresh folder: agents load project config (and plugins) from their cwd and session folder.
  const folder = await mkdtemp(join(tmpdir(), 'boocoder-probe-'));
  const child = spawnInProcessGroup(path, args, {
    cwd: folder,
    env: options.env,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  child.stdin?.on('error', () => {});
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), options.timeoutMs);
  const timedOut = new Promise<never>((_, reject) =>
    deadline.signal.addEventListener('abort', () => reject(new TimedOut()), { once: true }),
  );
  timedOut.catch(() => {});
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(signal ? `it was killed by ${signal}` : `it exited with code ${code}`)),
    ),
  );
  exited.catch(() => {});
  const within = <T>(work: Promise<T>) => Promise.race([work, timedOut, exited]);
  let commandsSeen: () => void = () => {};
  const commandsArrived = new Promise<void>((resolve) => {
    commandsSeen = resolve;
  });
  let phase = 'spawn';
  try {
    await waitForSpawn(child);
    phase = 'initialize';
    const connection = acp
      .client({ name: 'boocoder-probe' })
      // The probe never lets an agent act: any permission request is refused.
      .onRequest(acp.methods.client.session.requestPermission, () => ({ outcome: { outcome: 'cancelled' } }))
      .onNotification(acp.methods.client.session.update, ({ params }) => {
        const update = params.update;
        if (update.sessionUpdate !== 'available_commands_update') return;
        result.commands = update.availableCommands
          .slice(0, MAX_COMMANDS)
          .map((c) => ({ name: cut(c.name, 100), description: cut(c.description, 500) }));
        commandsSeen();
      })
      .connect(
        acp.ndJsonStream(
          Writable.toWeb(child.stdin as NonNullable<typeof child.stdin>) as WritableStream<Uint8Array>,
          Readable.toWeb(child.stdout as NonNullable<typeof child.stdout>) as ReadableStream<Uint8Array>,
          { maxMessageBytes: options.maxMessageBytes },
        ),
      );
    try {
      const init = await within(connection.agent.request(acp.methods.agent.initialize, INITIALIZE_PARAMS));
      result.speaksAcp = true;
      recordInitialize(result, init);
      phase = 'authenticate';
      if (options.spec)
        await authenticateBeforeSession(connection.agent, options.spec, init, options.env, within);
      phase = 'session/new';
      const session = await within(
        connection.agent.request(acp.methods.agent.session.new, { cwd: folder, mcpServers: [] }),
      );
      recordSession(result, session);
      const wait = new AbortController();
      await within(
        Promise.race([
          commandsArrived,
          delay(options.commandsWaitMs ?? 1000, undefined, { signal: wait.signal }).catch(() => {}),
        ]),
      ).finally(() => wait.abort());
    } finally {
      connection.close();
    }
  } catch (err) {
    result.error = describeFailure(phase, err, options.timeoutMs);
    if (err instanceof acp.RequestError && isAuthRefusal(err, phase)) result.needsAuth = true;
  } finally {
    clearTimeout(timer);
    child.stdin?.end();
    await terminateProcessGroup(child, { graceMs: 500 });
    await rm(folder, { recursive: true, force: true }).catch(() => {});
  }
  return result;
}

function recordInitialize(result: AcpHandshake, init: acp.InitializeResponse): void {
  const info = agentInfoOf(init);
  if (info) result.agentInfo = info;
  result.authMethods = (init.authMethods ?? [])
    .slice(0, 20)
    .map((m) => ({ id: cut(m.id), name: cut(m.name) }));
  const caps = init.agentCapabilities;
  if (caps?.mcpCapabilities) {
    result.mcpCapabilities = {
      http: caps.mcpCapabilities.http === true,
      sse: caps.mcpCapabilities.sse === true,
    };
  }
  result.loadSession = caps?.loadSession === true;
}

function recordSession(result: AcpHandshake, session: acp.NewSessionResponse): void {
  const models = sessionModels(session);
  result.currentModel = models.current;
  result.models = models.available;
  result.modes = sessionModes(session).available;
  result.configOptions = sessionConfigOptions(session);
}

/** The agent wants a login: session/new refused for it, or the login step itself refused. */
const isAuthRefusal = (err: acp.RequestError, phase: string) =>
  phase === 'authenticate' || (err.code === AUTH_REQUIRED && phase === 'session/new');

/** Short and safe to store: no agent-supplied text beyond a cut message. */
function describeFailure(phase: string, err: unknown, timeoutMs: number): string {
  if (err instanceof TimedOut) return `no answer to ACP ${phase} within ${timeoutMs} ms`;
  if (err instanceof acp.RequestError) {
    if (err.code === AUTH_REQUIRED && phase === 'session/new') return 'needs authentication';
    if (phase === 'authenticate') return `needs authentication (its login was refused: ${cut(err.message)})`;
    return `ACP ${phase} failed (JSON-RPC ${err.code}): ${cut(err.message)}`;
  }
  const detail = cut((err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.message);
  if (phase === 'spawn') return `could not start it (${detail})`;
  if (phase === 'initialize') return `no ACP: it ended without answering initialize (${detail})`;
  return `ACP ${phase} got no answer (${detail})`;
}
