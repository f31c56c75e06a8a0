/**
 * The MCP server a connection authenticated by a scoped credential gets: only the sub-task tools.
 * Nothing that reaches another project, lands changes in the user's repository (apply_change) or
 * answers permission requests is registered, so a prompt-injected agent cannot approve its own
 * actions or write outside its worktree through us.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ScopedGrant } from '../http/http-server.js';
import { MAX_TOOL_INPUT_ELEMENTS, SERVER_NAME, SERVER_VERSION } from '../server.js';
import type { Deps } from '../services/deps.js';
import { isScopeLive } from '../services/subtasks.js';
import { registerSubtaskChangesTool } from '../tools/subtask-changes.js';
import { registerSubtaskGetTool } from '../tools/subtask-get.js';
import { registerSubtaskListTool } from '../tools/subtask-list.js';
import { registerSubtaskNewTool } from '../tools/subtask-new.js';
import { looksScoped, type SubtaskScope } from './scope-tokens.js';

export function createScopedServer(deps: Deps, scope: SubtaskScope): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { tools: {}, logging: {} },
      maxToolInputElements: MAX_TOOL_INPUT_ELEMENTS,
      instructions:
        'boocoder lets you delegate: new_task queues a sub-task of your current task for another agent, ' +
        'get_task with wait_s waits for it, list_tasks lists your sub-tasks, list_pending_changes shows ' +
        "a sub-task's diffs.",
    },
  );
  registerSubtaskNewTool(server, deps, scope);
  registerSubtaskGetTool(server, deps, scope);
  registerSubtaskListTool(server, deps, scope);
  registerSubtaskChangesTool(server, deps, scope);
  return server;
}

/**
 * The HTTP endpoint's resolver for scoped credentials (startHttpServer's scopedCredential). A
 * token of ours that is unknown, revoked or whose task no longer runs is refused outright rather
 * than treated as no token, which on a token-less loopback daemon would grant every tool.
 */
export function scopedCredentialResolver(deps: Deps) {
  return async (token: string): Promise<ScopedGrant | 'refused' | undefined> => {
    if (!looksScoped(token)) return undefined;
    const scope = deps.subtaskScopes?.resolve(token);
    if (!scope || !(await isScopeLive(deps, scope))) return 'refused';
    return { principal: scope.taskId, createMcpServer: () => createScopedServer(deps, scope) };
  };
}
