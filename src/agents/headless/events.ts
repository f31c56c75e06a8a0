/**
 * The headless CLIs' tool, reasoning and plan lines as transcript events (agent-events.ts). Pure;
 * every field is read defensively (the lines come from the agent).
 */
import { type AgentEvent, errorEvent, planEvent, type ToolStatus, toolEvent } from '../agent-events.js';

type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): JsonObject => (isObject(v) ? v : {});

/** The agents' tool statuses on ACP's. */
export function toolStatus(v: unknown): ToolStatus | undefined {
  if (v === 'pending') return 'pending';
  if (v === 'running' || v === 'in_progress') return 'in_progress';
  if (v === 'completed' || v === 'success') return 'completed';
  if (v === 'error' || v === 'failed' || v === 'declined') return 'failed';
  return undefined;
}

/** A path named in a tool's input, as the agents spell it. */
export const pathIn = (input: JsonObject): unknown => input.file_path ?? input.filePath ?? input.path;

/** A Codex item (command_execution, file_change, mcp_tool_call, reasoning, todo_list, error). */
export function codexItemEvent(item: JsonObject): AgentEvent | undefined {
  const status = toolStatus(item.status);
  if (item.type === 'command_execution')
    return toolEvent({
      id: item.id,
      toolKind: 'execute',
      command: item.command,
      status,
      exitCode: item.exit_code,
    });
  if (item.type === 'file_change') {
    const changes = Array.isArray(item.changes) ? item.changes : [];
    return toolEvent({ id: item.id, toolKind: 'edit', paths: changes.map((c) => obj(c).path), status });
  }
  if (item.type === 'mcp_tool_call')
    return toolEvent({ id: item.id, toolKind: item.tool, title: item.server, status });
  if (item.type === 'reasoning' && typeof item.text === 'string') return { kind: 'thought', text: item.text };
  if (item.type === 'todo_list' && Array.isArray(item.items))
    return planEvent(
      item.items.map((i) => ({
        content: obj(i).text,
        status: obj(i).completed === true ? 'completed' : 'pending',
      })),
    );
  if (item.type === 'error') return errorEvent(item.message);
  return undefined;
}
