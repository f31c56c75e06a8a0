/** The agent registry: probe the machine for coding agents and keep what was found in available_agents. */
import { buildAgentEnv } from '../agents/agent-env.js';
import { listLaunchSpecs } from '../agents/launch-specs.js';
import { type ProbeResult, probeAgents } from '../agents/probe.js';
import {
  type AgentProbeRow,
  type AvailableAgent,
  listAvailableAgents,
  upsertAvailableAgents,
} from '../db/available-agents.js';
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
        }
      : null,
  };
}

/**
 * Returns the registry. It probes (with an ACP handshake, as the agent would run in a task) when
 * asked to (`refresh`) or when an agent has never been probed; otherwise the stored probe is reused.
 */
export async function probeAndRecordAgents(deps: Deps, refresh: boolean): Promise<AvailableAgent[]> {
  const specs = listLaunchSpecs(deps.config.agents);
  const known = await listAvailableAgents(deps.db);
  const missing = specs.some((s) => !known.some((k) => k.name === s.name));
  if (!refresh && !missing) return known;
  const { home, childEnv } = deps.config;
  const results = await probeAgents({
    specs,
    pathEnv: childEnv.PATH ?? '',
    homeDir: childEnv.HOME,
    handshake: { env: (spec) => buildAgentEnv({ spec, home, childEnv }) },
  });
  await upsertAvailableAgents(deps.db, results.map(toRow));
  return listAvailableAgents(deps.db);
}
