import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { listAgentSessions } from '../db/agent-sessions.js';
import type { Deps } from '../services/deps.js';
import { runTool, toolResult } from './result.js';
import { agentSessionView, toAgentSessionView } from './views.js';

export function registerGetAgentSessionsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'get_agent_sessions',
    {
      title: 'Agent sessions of a session',
      description:
        'One row per (chat, agent) in the session: backend, status, whether a backend session exists, last ' +
        'activity, and the tokens and cost summed over its runs.',
      inputSchema: { session_id: z.uuid() },
      outputSchema: { session_id: z.string(), agent_sessions: z.array(agentSessionView) },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      runTool(deps.logger, async () => {
        const rows = await listAgentSessions(deps.db, args.session_id, 500);
        return toolResult({ session_id: args.session_id, agent_sessions: rows.map(toAgentSessionView) });
      }),
  );
}
