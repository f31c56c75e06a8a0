/**
 * boocoder itself as an MCP server of an ACP agent's session, so the agent can queue sub-tasks of
 * the task it runs (docs/subtasks.md). The agent reaches the daemon that runs it over HTTP, with a
 * credential scoped to its chat's running task: never a second daemon started from the agent's
 * isolated home, which would have its own database and none of this daemon's tokens.
 */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { Task } from '../../db/rows.js';
import type { SubtaskScopes } from '../../subtasks/scope-tokens.js';
import { KNOWN_MCP_CLIENTS } from '../probe.js';

export const BOOCODER_MCP_NAME = 'boocoder';

/** A warm session keeps its token across its chat's tasks: the token's owner is the chat. */
function chatOwner(chatId: string): string {
  return `chat:${chatId}`;
}

/** Points the chat's existing token (a warm session's) at the task now running in it. */
export function retargetChatToken(scopes: SubtaskScopes | undefined, task: Task): void {
  if (task.chatId) scopes?.retarget(chatOwner(task.chatId), { taskId: task.id, projectId: task.projectId });
}

/**
 * The mcpServers for a new ACP session of `agent` running `task`: boocoder over HTTP with a fresh
 * scoped token, or none when the daemon has no HTTP endpoint or the agent is not known to be an MCP
 * client (the probe's list; custom agents get none).
 */
export function boocoderMcpServers(
  scopes: SubtaskScopes | undefined,
  agent: string,
  task: Task,
): acp.McpServer[] {
  const url = scopes?.endpointUrl;
  if (!scopes || !url || !task.chatId || !KNOWN_MCP_CLIENTS.has(agent)) return [];
  const token = scopes.mint({ taskId: task.id, projectId: task.projectId }, chatOwner(task.chatId));
  return [
    {
      type: 'http',
      name: BOOCODER_MCP_NAME,
      url,
      headers: [{ name: 'Authorization', value: `Bearer ${token}` }],
    },
  ];
}
