/**
 * createServer: a new McpServer per connection (one shared McpServer across clients leaked data
 * between them: GHSA-345p-7cg4-v4c7). It only registers tools and resources; the work is in services.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { isBoocoderError, toPublicError } from './errors.js';
import { serveSubscriptions } from './resources/subscriptions.js';
import { registerTaskResources } from './resources/task-resources.js';
import { getChange } from './services/changes.js';
import type { Deps } from './services/deps.js';
import { registerAnswerPermissionTool } from './tools/answer-permission.js';
import { registerApplyChangeTool } from './tools/apply-change.js';
import { registerCancelTaskTool } from './tools/cancel-task.js';
import { registerDecideArenaTool } from './tools/decide-arena.js';
import { registerGetAgentSessionsTool } from './tools/get-agent-sessions.js';
import { registerGetArenaTool } from './tools/get-arena.js';
import { registerGetTaskTool } from './tools/get-task.js';
import { registerGetTranscriptTool } from './tools/get-transcript.js';
import { registerGetUsageTool } from './tools/get-usage.js';
import { registerListArenasTool } from './tools/list-arenas.js';
import { registerListInboxTool } from './tools/list-inbox.js';
import { registerListPendingChangesTool } from './tools/list-pending-changes.js';
import { registerListPermissionRequestsTool } from './tools/list-permission-requests.js';
import { registerListTasksTool } from './tools/list-tasks.js';
import { registerNewArenaTool } from './tools/new-arena.js';
import { registerNewTaskTool } from './tools/new-task.js';
import { registerProbeAgentsTool } from './tools/probe-agents.js';
import { changeDiffUri } from './tools/views.js';

export const SERVER_NAME = 'boocoder';
export const SERVER_VERSION = '0.1.0';
/** Bounds the work one tools/call can ask for (arrays and object members across the arguments). */
export const MAX_TOOL_INPUT_ELEMENTS = 1000;

const UUID_RE = /^[0-9a-f-]{36}$/i;

export function createServer(deps: Deps): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { tools: {}, resources: {}, logging: {} },
      maxToolInputElements: MAX_TOOL_INPUT_ELEMENTS,
      instructions:
        'boocoder runs coding agents on tasks in git worktrees. new_task queues work and returns at once; ' +
        'get_task with wait_s waits for it; list_pending_changes shows the per-file diffs; apply_change lands ' +
        "one, or several at once (change_ids), in the repository (or rejects / reverts them). A task blocked on an agent's permission request " +
        'waits for answer_permission (list_permission_requests shows what is asked).',
    },
  );
  registerNewTaskTool(server, deps);
  registerGetTaskTool(server, deps);
  registerListTasksTool(server, deps);
  registerCancelTaskTool(server, deps);
  registerListPendingChangesTool(server, deps);
  registerApplyChangeTool(server, deps);
  registerGetAgentSessionsTool(server, deps);
  registerProbeAgentsTool(server, deps);
  registerListPermissionRequestsTool(server, deps);
  registerAnswerPermissionTool(server, deps);
  registerNewArenaTool(server, deps);
  registerGetArenaTool(server, deps);
  registerDecideArenaTool(server, deps);
  registerListArenasTool(server, deps);
  registerGetTranscriptTool(server, deps);
  registerListInboxTool(server, deps);
  registerTaskResources(server, deps);
  serveSubscriptions(server, deps);
  registerGetUsageTool(server, deps);
  server.registerResource(
    'change-diff',
    new ResourceTemplate('boocoder://changes/{change_id}/diff', { list: undefined }),
    { title: 'Full diff of a pending change', mimeType: 'text/x-diff' },
    async (_uri, vars) => {
      const id = String(vars.change_id);
      if (!UUID_RE.test(id)) throw new Error(`E_INVALID_INPUT: not a change id: ${id.slice(0, 40)}`);
      try {
        const change = await getChange(deps, id);
        return { contents: [{ uri: changeDiffUri(change.id), mimeType: 'text/x-diff', text: change.diff }] };
      } catch (err) {
        // Resource reads bypass the tools' error shaping: a driver error would reach the client verbatim.
        if (!isBoocoderError(err)) deps.logger.error('reading a change diff failed', { changeId: id, err });
        const e = toPublicError(err);
        throw new Error(`${e.code}: ${e.message}`);
      }
    },
  );
  return server;
}
