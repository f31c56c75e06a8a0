/** The agent registry: probe the machine for coding agents and keep what was found in available_agents. */
import { listLaunchSpecs } from '../agents/launch-specs.js';
import { probeAgents } from '../agents/probe.js';
import { type AvailableAgent, listAvailableAgents, upsertAvailableAgents } from '../db/available-agents.js';
import type { Deps } from './deps.js';

/**
 * Returns the registry. It probes when asked to (`refresh`) or when the registry has never been
 * filled; otherwise the stored probe is returned as it is.
 */
export async function probeAndRecordAgents(deps: Deps, refresh: boolean): Promise<AvailableAgent[]> {
  const specs = listLaunchSpecs(deps.config.agents);
  const known = await listAvailableAgents(deps.db);
  const missing = specs.some((s) => !known.some((k) => k.name === s.name));
  if (!refresh && !missing) return known;
  const results = await probeAgents({
    specs,
    pathEnv: deps.config.childEnv.PATH ?? '',
    homeDir: deps.config.childEnv.HOME,
  });
  await upsertAvailableAgents(
    deps.db,
    results.map((r) => ({
      name: r.name,
      installPath: r.installPath,
      version: r.version,
      supportsAcp: r.supportsAcp,
      supportsMcpClient: r.supportsMcpClient,
      label: r.label,
      transport: 'acp',
      foundVia: r.foundVia,
      probeError: r.error ?? null,
    })),
  );
  return listAvailableAgents(deps.db);
}
