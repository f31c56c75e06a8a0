/** SQL for available_agents, the registry of coding agents found on this machine. */
import type { Queryable } from './db.js';
import { toCamel } from './rows.js';

export interface AvailableAgent {
  name: string;
  installPath: string | null;
  version: string | null;
  supportsAcp: boolean;
  supportsMcpClient: boolean;
  lastProbedAt: Date | null;
  models: unknown[];
  label: string | null;
  transport: string | null;
  commands: unknown[];
  foundVia: string | null;
  probeError: string | null;
  needsAuth: boolean;
  acpInfo: Record<string, unknown> | null;
  /** What the probe saw of the binary (probe.ts): the same fingerprint means the probe still holds. */
  binaryFingerprint: string | null;
}

export type AgentProbeRow = Omit<AvailableAgent, 'lastProbedAt'>;

/** Stores one probe of every agent in one statement; jsonb values travel as JSON text. */
export async function upsertAvailableAgents(db: Queryable, agents: AgentProbeRow[]): Promise<void> {
  if (agents.length === 0) return;
  const col = <K extends keyof AgentProbeRow>(k: K) => agents.map((a) => a[k]);
  const json = <K extends 'models' | 'commands' | 'acpInfo'>(k: K) => agents.map((a) => JSON.stringify(a[k]));
  await db.query(
    `INSERT INTO available_agents (name, install_path, version, supports_acp, supports_mcp_client, label, transport,
                                   found_via, probe_error, needs_auth, models, commands, acp_info, binary_fingerprint,
                                   last_probed_at)
     SELECT n, p, v, acp, mcp, l, t, f, e, na, m::jsonb, c::jsonb, i::jsonb, b, clock_timestamp()
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[], $7::text[], $8::text[],
                   $9::text[], $10::bool[], $11::text[], $12::text[], $13::text[], $14::text[])
            AS u(n, p, v, acp, mcp, l, t, f, e, na, m, c, i, b)
     ON CONFLICT (name) DO UPDATE SET install_path = EXCLUDED.install_path, version = EXCLUDED.version,
        supports_acp = EXCLUDED.supports_acp, supports_mcp_client = EXCLUDED.supports_mcp_client,
        label = EXCLUDED.label, transport = EXCLUDED.transport, found_via = EXCLUDED.found_via,
        probe_error = EXCLUDED.probe_error, needs_auth = EXCLUDED.needs_auth, models = EXCLUDED.models,
        commands = EXCLUDED.commands, acp_info = EXCLUDED.acp_info, binary_fingerprint = EXCLUDED.binary_fingerprint,
        last_probed_at = EXCLUDED.last_probed_at`,
    [
      col('name'),
      col('installPath'),
      col('version'),
      col('supportsAcp'),
      col('supportsMcpClient'),
      col('label'),
      col('transport'),
      col('foundVia'),
      col('probeError'),
      col('needsAuth'),
      json('models'),
      json('commands'),
      json('acpInfo'),
      col('binaryFingerprint'),
    ],
  );
}

export async function listAvailableAgents(db: Queryable): Promise<AvailableAgent[]> {
  const { rows } = await db.query('SELECT * FROM available_agents ORDER BY name');
  return rows.map((r) => toCamel<AvailableAgent>(r));
}

export async function findAvailableAgent(db: Queryable, name: string): Promise<AvailableAgent | undefined> {
  const { rows } = await db.query('SELECT * FROM available_agents WHERE name = $1', [name]);
  return rows[0] ? toCamel<AvailableAgent>(rows[0]) : undefined;
}
