import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { probeAndRecordAgents } from '../services/agents.js';
import type { Deps } from '../services/deps.js';
import { iso, isoSchema, runTool, toolResult } from './result.js';

const agentView = z.object({
  name: z.string(),
  label: z.string().nullable(),
  installed: z.boolean(),
  install_path: z.string().nullable(),
  found_via: z.string().nullable(),
  version: z.string().nullable(),
  supports_acp: z.boolean(),
  supports_mcp_client: z.boolean(),
  needs_auth: z.boolean(),
  models: z.array(z.unknown()),
  commands: z.array(z.unknown()),
  acp: z.record(z.string(), z.unknown()).nullable(),
  transport: z.string().nullable(),
  probe_error: z.string().nullable(),
  /** What keeps the agent from running and how to fix it; new_task refuses the agent with this text. */
  fix: z.string().nullable(),
  last_probed_at: isoSchema,
  cached: z.boolean(),
});

export function registerProbeAgentsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'probe_agents',
    {
      title: 'Find the coding agents on this machine',
      description:
        'Finds the known coding-agent CLIs (opencode, claude, codex, gemini, qwen, and configured agents), their ' +
        'install path, version, ACP support (initialize + session/new in a scratch folder: models, modes, other ' +
        'session options such as the thought level, commands, ' +
        'whether a login is needed), stores them in the registry and returns it. An agent whose binary is ' +
        'unchanged since its last probe is not run again (cached=true); refresh=true probes every agent again ' +
        '(after a login or a config change outside the binary).',
      inputSchema: { refresh: z.boolean().optional() },
      outputSchema: { agents: z.array(agentView) },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const agents = await probeAndRecordAgents(deps, args.refresh ?? false);
        return toolResult({
          agents: agents.map((a) => ({
            name: a.name,
            label: a.label,
            installed: a.installPath !== null,
            install_path: a.installPath,
            found_via: a.foundVia,
            version: a.version,
            supports_acp: a.supportsAcp,
            supports_mcp_client: a.supportsMcpClient,
            needs_auth: a.needsAuth,
            models: a.models ?? [],
            commands: a.commands ?? [],
            acp: a.acpInfo,
            transport: a.transport,
            probe_error: a.probeError,
            fix: a.fix,
            last_probed_at: iso(a.lastProbedAt),
            cached: a.cached,
          })),
        });
      }),
  );
}
