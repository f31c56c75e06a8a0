/** The agent registry: probe the machine for coding agents and keep what was found in available_agents. */
import { buildAgentEnv } from '../agents/agent-env.js';
import { type AgentLaunchSpec, listLaunchSpecs } from '../agents/launch-specs.js';
import { type ProbeResult, probeChangedAgents } from '../agents/probe.js';
import {
  type AgentProbeRow,
  type AvailableAgent,
  findAvailableAgent,
  listAvailableAgents,
  upsertAvailableAgents,
} from '../db/available-agents.js';
import { BoocoderError } from '../errors.js';
import type { Deps } from './deps.js';

function toRow(r: ProbeResult): AgentProbeRow {
  const acp = r.acp;
  return {
    name: r.name,
    installPath: r.installPath,
    version: r.version,
    supportsAcp: r.supportsAcp,
    supportsMcpClient: r.supportsMcpClient,
    label: r.label,
    transport: 'acp',
    foundVia: r.foundVia,
    probeError: r.error ?? null,
    needsAuth: r.needsAuth,
    binaryFingerprint: r.fingerprint,
    models: acp?.models ?? [],
    commands: acp?.commands ?? [],
    acpInfo: acp
      ? {
          agent_info: acp.agentInfo ?? null,
          auth_methods: acp.authMethods,
          mcp_capabilities: acp.mcpCapabilities ?? null,
          load_session: acp.loadSession,
          current_model: acp.currentModel,
          modes: acp.modes,
          config_options: acp.configOptions,
        }
      : null,
  };
}

export interface RegisteredAgent extends AvailableAgent {
  /** True when this call did not probe the agent: the row is an earlier probe's, still current. */
  cached: boolean;
}

/** Agent name to the binary fingerprint of its stored probe. */
function storedFingerprints(known: readonly AvailableAgent[]): Map<string, string> {
  return new Map(known.flatMap((k) => (k.binaryFingerprint ? [[k.name, k.binaryFingerprint] as const] : [])));
}

/**
 * Probes the configured agents (with an ACP handshake, as the agent would run in a task) and
 * returns the registry. An agent whose binary is unchanged since its stored probe (same
 * fingerprint: path, inode, size, mtime, spec) is not run again and keeps its stored row, unless
 * `refresh` asks for a cold probe of every agent. A binary gone missing is recorded as not installed.
 */
export async function probeAndRecordAgents(deps: Deps, refresh: boolean): Promise<RegisteredAgent[]> {
  const specs = listLaunchSpecs(deps.config.agents);
  const known = refresh ? new Map<string, string>() : storedFingerprints(await listAvailableAgents(deps.db));
  const probed = await probeAndStore(deps, specs, known);
  const probedNames = new Set(probed.map((r) => r.name));
  const agents = await listAvailableAgents(deps.db);
  return agents.map((a) => ({ ...a, cached: !probedNames.has(a.name) }));
}

/** Probes the specs whose binary is not the one `known` describes, and stores what was found. */
async function probeAndStore(
  deps: Deps,
  specs: readonly AgentLaunchSpec[],
  known: ReadonlyMap<string, string>,
): Promise<ProbeResult[]> {
  const { home, childEnv } = deps.config;
  const { probed } = await probeChangedAgents(
    {
      specs: [...specs],
      pathEnv: childEnv.PATH ?? '',
      homeDir: childEnv.HOME,
      handshake: { env: (spec) => buildAgentEnv({ spec, home, childEnv }) },
    },
    known,
  );
  await upsertAvailableAgents(deps.db, probed.map(toRow));
  return probed;
}

/**
 * Refuses at once an agent the registry knows cannot run (not installed, or waiting for a login),
 * instead of queueing a task that fails a second later. The registry is only believed while the
 * binary is the one it describes: a changed fingerprint (an install, an upgrade, a new config
 * command) gets the agent probed again first. An agent never probed is not refused.
 */
export async function refuseUnusableAgent(deps: Deps, spec: AgentLaunchSpec): Promise<void> {
  const stored = await findAvailableAgent(deps.db, spec.name);
  if (!stored || (stored.installPath !== null && !stored.needsAuth)) return;
  const known = new Map(stored.binaryFingerprint ? [[spec.name, stored.binaryFingerprint]] : []);
  const [fresh] = await probeAndStore(deps, [spec], known);
  const now = fresh ? toRow(fresh) : stored;
  // The config file is named as the user sees it: the host path of the server's home stays out.
  const configFile = '$BOOCODER_HOME/config.json';
  if (now.installPath === null) {
    const install = spec.installHint ? `install it (${spec.installHint}) or ` : '';
    throw new BoocoderError(
      'E_AGENT_NOT_FOUND',
      `agent "${spec.name}" is not installed (its last probe found no "${spec.command.startsWith('/') ? 'configured command' : spec.command}"); ${install}set agents.${spec.name}.command in ${configFile}, then queue the task again`,
    );
  }
  if (now.needsAuth) {
    throw new BoocoderError(
      'E_AGENT_NEEDS_AUTH',
      `agent "${spec.name}" needs authentication (its last probe was refused a session): log in with the agent's own CLI, or give it an API key through agents.${spec.name}.env in ${configFile}, then queue the task again`,
    );
  }
}
