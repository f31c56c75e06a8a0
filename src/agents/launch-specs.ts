/**
 * How to start each coding agent as an ACP server over stdio. Built-ins cover the agents boocoder
 * knows; the config file (config.agents) may override one or add a custom ACP agent.
 * Nothing here spawns anything: callers get a validated spec or a BoocoderError.
 */
import type { AgentSpecInput } from '../config.js';
import { BoocoderError } from '../errors.js';

export interface AgentLaunchSpec {
  name: string;
  label: string;
  /** A bare program name looked up on PATH, or an absolute path. */
  command: string;
  args: readonly string[];
  /** Added on top of the environment the caller starts the agent with. */
  env: Readonly<Record<string, string>>;
  /** Arguments that print a version and exit; absent when the binary has no such flag. */
  versionArgs?: readonly string[];
  /** Shown when the binary is missing. */
  installHint?: string;
  /**
   * An ACP auth method to select with `authenticate` after `initialize`, before `session/new`,
   * when the agent advertises it (see acp-authenticate.ts for when the step is skipped).
   */
  authMethod?: string;
  /** Where the agent saves the login `authenticate` makes: a file in the directory `dirEnv` names. */
  authLoginFile?: { dirEnv: string; file: string };
  /** The model for tasks that name none (config file); absent: the agent's own default. */
  model?: string;
  /** Set for the native agent (`boocode`), which runs in this process: `command` is then never spawned. */
  native?: NativeSpec;
}

/** How the native agent reaches its model (config file: agents.boocode). */
export interface NativeSpec {
  api: 'openai' | 'anthropic';
  baseUrl?: string;
  /** USD per million tokens, per model name. */
  prices: Readonly<Record<string, { input: number; output: number }>>;
}

/** The native agent's name: boocoder's own agent, configured like any other agent. */
export const NATIVE_AGENT_NAME = 'boocode';

export const AGENT_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * Bare command names: letters, digits and `._+-`, not starting with `-` or `.`. Blocks option
 * injection (`--foo` read as a flag by whatever runs it), relative paths (`../x`, resolved against
 * whatever directory the server happens to run in) and shell metacharacters (`;rm -rf /`).
 */
const BARE_COMMAND_PATTERN = /^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,127}$/;
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;

const BUILTIN_SPECS: readonly AgentLaunchSpec[] = [
  {
    name: 'opencode',
    label: 'opencode',
    command: 'opencode',
    args: ['acp'],
    env: {},
    versionArgs: ['--version'],
    installHint: 'npm install -g opencode-ai',
  },
  {
    name: 'claude',
    label: 'Claude Code (claude-agent-acp)',
    command: 'claude-agent-acp',
    args: [],
    env: {},
    // claude-agent-acp has no version flag: its version comes from ACP initialize (agentInfo).
    installHint: 'npm install -g @agentclientprotocol/claude-agent-acp',
  },
  {
    name: 'codex',
    label: 'Codex (codex-acp)',
    command: 'codex-acp',
    args: [],
    env: {},
    // codex-acp has no version flag either: agentInfo from ACP initialize.
    installHint: 'npm install -g @zed-industries/codex-acp',
    // Its built-in OpenAI provider refuses session/new until a login is picked: with
    // OPENAI_API_KEY set, this one. It saves the key in $CODEX_HOME/auth.json.
    authMethod: 'openai-api-key',
    authLoginFile: { dirEnv: 'CODEX_HOME', file: 'auth.json' },
  },
  {
    name: 'gemini',
    label: 'Gemini CLI',
    command: 'gemini',
    args: ['--acp'],
    env: {},
    versionArgs: ['--version'],
    installHint: 'npm install -g @google/gemini-cli',
  },
  {
    name: 'qwen',
    label: 'Qwen Code',
    command: 'qwen',
    args: ['--acp'],
    env: {},
    versionArgs: ['--version'],
    installHint: 'npm install -g @qwen-code/qwen-code',
  },
];

const builtins = new Map(BUILTIN_SPECS.map((s) => [s.name, s]));

export const BUILTIN_AGENT_NAMES: readonly string[] = BUILTIN_SPECS.map((s) => s.name);

export function isValidAgentName(name: unknown): name is string {
  return typeof name === 'string' && AGENT_NAME_PATTERN.test(name);
}

/** Throws E_INVALID_INPUT for anything that is not a plain agent name (`--foo`, `;rm -rf /`, `../x`). */
export function assertValidAgentName(name: unknown): asserts name is string {
  if (!isValidAgentName(name)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      'invalid agent name: use lower-case letters, digits, "-" and "_", starting with a letter (at most 64)',
    );
  }
}

/** A command is either an absolute path or a bare name to look up on PATH. */
export function isAcceptableCommand(command: string): boolean {
  if (command.startsWith('/')) return !command.includes('\0') && !command.split('/').includes('..');
  return BARE_COMMAND_PATTERN.test(command);
}

function fromConfig(
  name: string,
  input: AgentSpecInput,
  builtin: AgentLaunchSpec | undefined,
): AgentLaunchSpec {
  if (name === NATIVE_AGENT_NAME) return nativeSpec(name, input);
  if (input.command === undefined || !isAcceptableCommand(input.command)) {
    throw new BoocoderError(
      'E_CONFIG',
      `agent "${name}" in the config file: command must be a program name or an absolute path`,
    );
  }
  for (const key of Object.keys(input.env ?? {})) {
    if (!ENV_KEY_PATTERN.test(key)) {
      throw new BoocoderError(
        'E_CONFIG',
        `agent "${name}" in the config file: invalid environment variable name`,
      );
    }
  }
  // Keep the built-in version flag only while the override still runs the same program.
  const versionArgs =
    input.versionArgs ?? (builtin && builtin.command === input.command ? builtin.versionArgs : undefined);
  return {
    name,
    label: input.label ?? builtin?.label ?? name,
    command: input.command,
    args: [...(input.args ?? [])],
    env: { ...(input.env ?? {}) },
    ...(versionArgs ? { versionArgs: [...versionArgs] } : {}),
    ...(builtin?.installHint ? { installHint: builtin.installHint } : {}),
    ...(input.model ? { model: input.model } : {}),
    // The name says which agent this is: its login step stays (it only runs if advertised).
    ...(builtin?.authMethod ? { authMethod: builtin.authMethod } : {}),
    ...(builtin?.authLoginFile ? { authLoginFile: { ...builtin.authLoginFile } } : {}),
  };
}

/** The native agent's spec: nothing to spawn, a model endpoint to call. */
function nativeSpec(name: string, input: AgentSpecInput): AgentLaunchSpec {
  for (const key of Object.keys(input.env ?? {})) {
    if (!ENV_KEY_PATTERN.test(key)) {
      throw new BoocoderError(
        'E_CONFIG',
        `agent "${name}" in the config file: invalid environment variable name`,
      );
    }
  }
  return {
    name,
    label: input.label ?? 'boocode (native)',
    command: name,
    args: [],
    env: { ...(input.env ?? {}) },
    ...(input.model ? { model: input.model } : {}),
    native: {
      api: input.api ?? 'openai',
      ...(input.baseUrl ? { baseUrl: input.baseUrl } : {}),
      prices: { ...(input.prices ?? {}) },
    },
  };
}

/** Own entries only: a name like `constructor` must not find Object.prototype.constructor. */
function configEntry(
  configAgents: Readonly<Record<string, AgentSpecInput>>,
  name: string,
): AgentSpecInput | undefined {
  return Object.hasOwn(configAgents, name) ? configAgents[name] : undefined;
}

/**
 * The launch spec for `name`: the config file's entry if there is one, else the built-in.
 * Throws E_INVALID_INPUT for a malformed name and E_AGENT_NOT_FOUND for an unknown one, before
 * anything is spawned.
 */
export function resolveLaunchSpec(
  name: string,
  configAgents: Readonly<Record<string, AgentSpecInput>> = {},
): AgentLaunchSpec {
  assertValidAgentName(name);
  const builtin = builtins.get(name);
  const configured = configEntry(configAgents, name);
  if (configured) return fromConfig(name, configured, builtin);
  if (builtin) return { ...builtin, args: [...builtin.args], env: { ...builtin.env } };
  const known = agentNames(configAgents).join(', ');
  throw new BoocoderError(
    'E_AGENT_NOT_FOUND',
    `unknown agent "${name}"; known agents: ${known}. Add custom ACP agents under "agents" in the config file`,
  );
}

function agentNames(configAgents: Readonly<Record<string, AgentSpecInput>>): string[] {
  const names = [...BUILTIN_AGENT_NAMES];
  for (const name of Object.keys(configAgents).sort()) {
    if (!builtins.has(name) && isValidAgentName(name)) names.push(name);
  }
  return names;
}

/** Built-ins (overridden where the config says so) followed by custom agents, in a stable order. */
export function listLaunchSpecs(
  configAgents: Readonly<Record<string, AgentSpecInput>> = {},
): AgentLaunchSpec[] {
  return agentNames(configAgents).map((name) => resolveLaunchSpec(name, configAgents));
}
