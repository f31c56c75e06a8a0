/** The agent registry: probe the machine for coding agents and keep what was found in available_agents. */
import { buildAgentEnv } from '../agents/agent-env.js';
import { agentSearchPath } from '../agents/agent-env-allowlist.js';
import { type AgentLaunchSpec, listLaunchSpecs } from '../agents/launch-specs.js';
import { type ProbeResult, probeChangedAgents } from '../agents/probe.js';
import {
  type AgentProbeRow,
  type AvailableAgent,
  findAvailableAgent,
  listAvailableAgents,
  upsertAvailableAgents,
} from '../db/available-agents.js';
import { BoocoderError, type ErrorCode } from '../errors.js';
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
  /** What keeps it from running and how to fix that (agentFix); null when it can run or is not configured. */
  fix: string | null;
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
  const specOf = new Map(specs.map((spec) => [spec.name, spec]));
  return agents.map((a) => {
    const spec = specOf.get(a.name);
    return { ...a, cached: !probedNames.has(a.name), fix: (spec && agentFix(spec, a)?.text) ?? null };
  });
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
      // The PATH agents get in tasks: the probe must find the binaries tasks will run.
      pathEnv: agentSearchPath(childEnv.PATH),
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
  if (!stored || agentFix(spec, stored) === null) return;
  const known = new Map(stored.binaryFingerprint ? [[spec.name, stored.binaryFingerprint]] : []);
  const [fresh] = await probeAndStore(deps, [spec], known);
  const fix = agentFix(spec, fresh ? toRow(fresh) : stored);
  if (fix) throw new BoocoderError(fix.code, `${fix.text}; then queue the task again`);
}

/**
 * What keeps an agent from running and how to fix it, by its registry entry; null when nothing
 * does. probe_agents shows the text, new_task refuses with it. The config file is named as the
 * user knows it: the host path of the server's home stays out of messages.
 */
export function agentFix(
  spec: AgentLaunchSpec,
  entry: Pick<AvailableAgent, 'installPath' | 'needsAuth'>,
): { code: ErrorCode; text: string } | null {
  const configFile = '$BOOCODER_HOME/config.json';
  if (entry.installPath === null && spec.native) {
    return {
      code: 'E_AGENT_NOT_FOUND',
      text: `agent "${spec.name}" (native) has no model endpoint: set agents.${spec.name}.baseUrl, or its API key in agents.${spec.name}.env, in ${configFile}`,
    };
  }
  if (entry.installPath === null) {
    const install = spec.installHint ? `install it (${spec.installHint}) or ` : '';
    const what = spec.command.startsWith('/') ? 'its configured command' : `"${spec.command}"`;
    return {
      code: 'E_AGENT_NOT_FOUND',
      text: `agent "${spec.name}" is not installed (the probe found no ${what}): ${install}set agents.${spec.name}.command in ${configFile}`,
    };
  }
  if (entry.needsAuth) {
    return {
      code: 'E_AGENT_NEEDS_AUTH',
      text: `agent "${spec.name}" needs authentication (the probe was refused a session): log in with the agent's own CLI and run probe_agents with refresh=true (a login changes no binary, so nothing probes it again by itself), or give it an API key through agents.${spec.name}.env in ${configFile}`,
    };
  }
  return null;
}
