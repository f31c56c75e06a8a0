/**
 * ACP `session/update` notifications as transcript events (agent-events.ts). Pure. Updates that say
 * nothing about the turn's work (available commands, mode and config changes, replayed user text)
 * are left out.
 */
import type {
  RequestPermissionRequest,
  RequestPermissionResponse,
  SessionUpdate,
} from '@agentclientprotocol/sdk/unstable';
import {
  type AgentEvent,
  errorEvent,
  planEvent,
  str,
  type ToolStatus,
  toolEvent,
  usageEvent,
} from '../agent-events.js';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const STATUSES = new Set(['pending', 'in_progress', 'completed', 'failed']);

/**
 * The command of an `execute` call and its exit code, where agents put them: opencode and Claude
 * send rawInput {command}, Codex an argv; opencode's rawOutput carries metadata {exit}.
 */
function commandOf(rawInput: unknown): unknown {
  return isObject(rawInput) ? (rawInput.command ?? rawInput.cmd) : undefined;
}

function exitCodeOf(rawOutput: unknown): unknown {
  if (!isObject(rawOutput)) return undefined;
  const meta = isObject(rawOutput.metadata) ? rawOutput.metadata : {};
  return rawOutput.exitCode ?? rawOutput.exit_code ?? meta.exit ?? meta.exitCode;
}

/** The paths a call names: its locations, else a path in its input (file_path, filePath, path). */
function pathsOf(locations: unknown, rawInput: unknown): unknown[] {
  const located = Array.isArray(locations) ? locations.map((l) => (isObject(l) ? l.path : undefined)) : [];
  if (located.length > 0) return located;
  if (!isObject(rawInput)) return [];
  return [rawInput.file_path ?? rawInput.filePath ?? rawInput.path];
}

export function acpEventOf(update: SessionUpdate): AgentEvent | undefined {
  switch (update.sessionUpdate) {
    case 'agent_message_chunk':
    case 'agent_thought_chunk': {
      const content = update.content;
      if (content.type !== 'text' || content.text === '') return undefined;
      return {
        kind: update.sessionUpdate === 'agent_message_chunk' ? 'message' : 'thought',
        text: content.text,
      };
    }
    case 'tool_call':
    case 'tool_call_update': {
      const status = update.status && STATUSES.has(update.status) ? (update.status as ToolStatus) : undefined;
      return toolEvent({
        id: update.toolCallId,
        toolKind: update.kind,
        title: update.title,
        paths: pathsOf(update.locations, update.rawInput),
        command: commandOf(update.rawInput),
        status,
        exitCode: exitCodeOf(update.rawOutput),
      });
    }
    case 'plan':
      return planEvent(update.entries);
    case 'usage_update':
      return usageEvent({ cost: update.cost?.amount, currency: update.cost?.currency });
    case 'notice':
      return update.severity === 'error'
        ? errorEvent([update.title, update.description].filter(Boolean).join(': '))
        : undefined;
    default:
      return undefined;
  }
}

/** A permission request with its answer: the kind of option chosen (allow_once...) or cancelled. */
export function permissionEvent(
  request: RequestPermissionRequest,
  response: RequestPermissionResponse,
): AgentEvent {
  const call = request.toolCall;
  const outcome = response.outcome;
  const chosen =
    outcome.outcome === 'selected'
      ? (request.options.find((o) => o.optionId === outcome.optionId)?.kind ?? 'selected')
      : 'cancelled';
  const paths = pathsOf(call.locations, call.rawInput).flatMap((p) => str(p) ?? []);
  return {
    kind: 'permission',
    title: str(call.title) ?? str(call.kind) ?? 'a tool call',
    ...(str(call.kind, 100) ? { toolKind: str(call.kind, 100) } : {}),
    ...(paths.length > 0 ? { paths: paths.slice(0, 20) } : {}),
    outcome: str(chosen, 40) ?? 'selected',
  };
}
