/**
 * Finds which coding agents are installed and their versions, all in parallel. Probing runs
 * binaries found on the user's PATH, so it treats them as untrusted: exact version arguments only,
 * no shell, a neutral working directory, a timeout that kills the whole process group (a fake
 * binary can leave hanging children) and an output cap (a binary printing 100 MB must not be held).
 * A binary unchanged since an earlier probe (same fingerprint) is not run again at all.
 */
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { type AcpHandshake, acpHandshake } from './acp/handshake.js';
import { HeadBuffer } from './capped-output.js';
import { agentSearchDirs, type LocatedAgent, locateAgent } from './find-executable.js';
import type { AgentLaunchSpec } from './launch-specs.js';
import { spawnInProcessGroup, terminateProcessGroup, waitForSpawn } from './process-group.js';

export interface ProbeResult {
  name: string;
  label: string;
  installPath: string | null;
  version: string | null;
  /** Where the binary was found ('config', 'PATH', 'npm-prefix', '~/.local/bin'...), null if not. */
  foundVia: string | null;
  /** Identifies the binary and how it is launched (see locateAgent); null when not found. */
  fingerprint: string | null;
  /**
   * With `handshake`: the binary answered ACP `initialize`. Without: the binary exists and its spec
   * starts an ACP server (not verified).
   */
  supportsAcp: boolean;
  supportsMcpClient: boolean;
  /** The handshake's session/new was refused for want of a login or key: installed, not usable yet. */
  needsAuth: boolean;
  /** What the handshake revealed (agent info, auth methods, models, modes, commands); with `handshake`. */
  acp?: AcpHandshake;
  error?: string;
}

export interface ProbeHandshakeOptions {
  /** The environment the agent runs with in tasks (buildAgentEnv), so the probe sees its logins. */
  env: (spec: AgentLaunchSpec) => Readonly<Record<string, string>>;
  timeoutMs?: number;
}

export interface ProbeOptions {
  specs: readonly AgentLaunchSpec[];
  pathEnv: string;
  extraDirs?: readonly string[];
  homeDir?: string;
  npmPrefix?: string;
  /** Environment for the version commands; defaults to just PATH. */
  env?: Readonly<Record<string, string>>;
  timeoutMs?: number;
  maxOutputBytes?: number;
  /** Also run the ACP handshake (initialize, then session/new in a throw-away folder). */
  handshake?: ProbeHandshakeOptions;
}

/**
 * Without a handshake: built-in agents that take MCP servers in ACP session/new (all five do). Custom agents stay false
 * until the ACP initialize handshake reports mcpCapabilities (issue 3).
 */
export const KNOWN_MCP_CLIENTS: ReadonlySet<string> = new Set([
  'opencode',
  'claude',
  'codex',
  'gemini',
  'qwen',
]);

const SEMVERISH = /(?<![\w.])v?(\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)/;

/** The first semver-looking token ("opencode 1.18.3", "v0.9.0-beta.1 (Gemini CLI)"), or null. */
export function parseVersion(text: string): string | null {
  const match = SEMVERISH.exec(text);
  return match?.[1] ? match[1].slice(0, 64) : null;
}

interface VersionOutcome {
  version: string | null;
  error?: string;
}

interface VersionRunOptions {
  env: Readonly<Record<string, string>>;
  timeoutMs: number;
  maxOutputBytes: number;
}

/** After the leader exits, how long to let its pipes drain before the group is killed. */
const DRAIN_MS = 250;

/**
 * Runs `path args` and parses a version from its stdout and stderr. The group is always killed at
 * the end: some CLIs leave background children (update checks) that would otherwise linger.
 */
export async function readVersion(
  path: string,
  args: readonly string[],
  options: VersionRunOptions,
): Promise<VersionOutcome> {
  // A neutral cwd: some CLIs load project config (and plugins) from the current directory.
  const child = spawnInProcessGroup(path, args, {
    cwd: tmpdir(),
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = new HeadBuffer(options.maxOutputBytes);
  const overflow = new AbortController();
  const onData = (chunk: Buffer) => {
    if (!output.push(chunk)) {
      child.stdout?.destroy();
      child.stderr?.destroy();
      overflow.abort();
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  exited.catch(() => {});
  const closed = once(child, 'close');
  closed.catch(() => {});
  try {
    await waitForSpawn(child);
  } catch (err) {
    return {
      version: null,
      error: `could not run the version command (${(err as NodeJS.ErrnoException).code})`,
    };
  }
  const timer = new AbortController();
  type Ending =
    | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
    | { kind: 'timeout' }
    | { kind: 'overflow' };
  let ending: Ending;
  try {
    ending = await Promise.race<Ending>([
      exited.then(([code, signal]) => ({ kind: 'exit', code, signal })),
      delay(options.timeoutMs, { kind: 'timeout' } as const, { signal: timer.signal }),
      once(overflow.signal, 'abort').then(() => ({ kind: 'overflow' }) as const),
    ]);
    if (ending.kind === 'exit') {
      await Promise.race([closed, delay(DRAIN_MS, undefined, { signal: timer.signal })]);
    }
  } finally {
    timer.abort();
    await terminateProcessGroup(child, { graceMs: 0 });
  }
  const version = parseVersion(output.text());
  switch (ending.kind) {
    case 'timeout':
      return { version, error: `version command timed out after ${options.timeoutMs} ms` };
    case 'overflow':
      return { version, error: `version command printed more than ${options.maxOutputBytes} bytes; stopped` };
    case 'exit':
      if (version) return { version };
      if (ending.code === 0) return { version, error: 'no version in output' };
      return {
        version,
        error: ending.signal
          ? `version command was killed by ${ending.signal}`
          : `version command exited with code ${ending.code}`,
      };
  }
}

async function probeOne(
  agent: LocatedAgent,
  run: VersionRunOptions,
  handshake: ProbeHandshakeOptions | undefined,
): Promise<ProbeResult> {
  const { spec, found } = agent;
  const base = { name: agent.name, label: agent.label };
  if (!found) {
    return {
      ...base,
      installPath: null,
      version: null,
      foundVia: null,
      fingerprint: null,
      supportsAcp: false,
      supportsMcpClient: false,
      needsAuth: false,
      error: agent.error ?? 'not found',
    };
  }
  const [version, acp] = await Promise.all([
    spec.versionArgs
      ? readVersion(found.path, spec.versionArgs, run)
      : Promise.resolve<VersionOutcome>({ version: null }),
    handshake
      ? acpHandshake(found.path, spec.args, {
          env: handshake.env(spec),
          timeoutMs: handshake.timeoutMs ?? run.timeoutMs,
          maxMessageBytes: 1024 * 1024,
          spec,
        })
      : Promise.resolve(undefined),
  ]);
  const located = { ...base, installPath: found.path, foundVia: found.via, fingerprint: agent.fingerprint };
  if (!acp) {
    return {
      ...located,
      version: version.version,
      supportsAcp: true,
      supportsMcpClient: KNOWN_MCP_CLIENTS.has(spec.name),
      needsAuth: false,
      ...(version.error ? { error: version.error } : {}),
    };
  }
  // Agents without a version flag (claude-agent-acp, codex-acp) give it in ACP initialize.
  const agentVersion = acp.agentInfo ? parseVersion(acp.agentInfo.version) : null;
  const error = acp.error ?? (version.version || agentVersion ? undefined : version.error);
  return {
    ...located,
    version: version.version ?? agentVersion,
    supportsAcp: acp.speaksAcp,
    // ACP requires every agent to take stdio MCP servers in session/new.
    supportsMcpClient: acp.speaksAcp,
    needsAuth: acp.needsAuth,
    acp,
    ...(error ? { error } : {}),
  };
}

export interface ChangedAgentsProbe {
  /** The agents that were probed: new, changed, or no longer found. */
  probed: ProbeResult[];
  /** The agents whose binary still has the fingerprint `known` gave: nothing was run for them. */
  unchanged: { name: string; fingerprint: string }[];
}

/**
 * Probes, in parallel, every spec whose binary is not the one `known` (agent name to the
 * fingerprint of its last probe) describes. An unchanged binary is not run at all: no version
 * command and no handshake. Never throws for a single agent's failure (see ProbeResult.error).
 */
export async function probeChangedAgents(
  options: ProbeOptions,
  known: ReadonlyMap<string, string>,
): Promise<ChangedAgentsProbe> {
  const dirs = await agentSearchDirs({
    pathEnv: options.pathEnv,
    ...(options.homeDir ? { homeDir: options.homeDir } : {}),
    ...(options.npmPrefix ? { npmPrefix: options.npmPrefix } : {}),
    ...(options.extraDirs ? { extraDirs: options.extraDirs } : {}),
  });
  const run: VersionRunOptions = {
    env: options.env ?? { PATH: options.pathEnv },
    timeoutMs: options.timeoutMs ?? 10_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
  };
  const native = options.specs.filter((spec) => spec.native).map(probeNative);
  const located = await Promise.all(options.specs.filter((s) => !s.native).map((s) => locateAgent(s, dirs)));
  const isUnchanged = (a: LocatedAgent) => a.fingerprint !== null && known.get(a.name) === a.fingerprint;
  const probed = await Promise.all(
    located.filter((a) => !isUnchanged(a)).map((a) => probeOne(a, run, options.handshake)),
  );
  const unchanged = located
    .filter(isUnchanged)
    .map((a) => ({ name: a.name, fingerprint: a.fingerprint as string }));
  return { probed: [...probed, ...native], unchanged };
}

/**
 * The native agent has no binary: it is installed once the config names its endpoint (baseUrl) or
 * a key for the vendor's own; it speaks no ACP and takes no MCP servers. Its endpoint is not
 * called here: a probe must not spend tokens.
 */
function probeNative(spec: AgentLaunchSpec): ProbeResult {
  const native = spec.native as NonNullable<AgentLaunchSpec['native']>;
  const key = native.api === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
  const configured = native.baseUrl !== undefined || spec.env[key] !== undefined;
  return {
    name: spec.name,
    label: spec.label,
    installPath: configured ? `native:${native.api}` : null,
    version: null,
    foundVia: configured ? 'config' : null,
    fingerprint: configured ? `native:${native.api}:${native.baseUrl ?? 'default'}` : null,
    supportsAcp: false,
    supportsMcpClient: false,
    needsAuth: false,
    ...(configured
      ? {}
      : { error: `set agents.${spec.name}.baseUrl (or ${key} in its env) in the config file` }),
  };
}

/** Probes every spec in parallel; never throws for a single agent's failure (see `error`). */
export async function probeAgents(options: ProbeOptions): Promise<ProbeResult[]> {
  return (await probeChangedAgents(options, new Map())).probed;
}
