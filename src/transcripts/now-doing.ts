/**
 * A task's one-line "now doing" ("running npm test", "editing src/a.ts"), from its agent's latest
 * event. Pure. Undefined when the event does not change what the agent is doing.
 */
import type { AgentEvent, ToolEvent } from '../agents/agent-events.js';

export const MAX_NOW_DOING_CHARS = 200;

const VERBS: Record<string, string> = {
  read: 'reading',
  edit: 'editing',
  delete: 'deleting',
  move: 'moving',
  search: 'searching',
  execute: 'running',
  fetch: 'fetching',
  think: 'thinking about',
};

/** Tool names the headless CLIs and opencode use, on ACP's kinds. */
const KIND_OF_NAME: Record<string, string> = {
  bash: 'execute',
  shell: 'execute',
  run_shell_command: 'execute',
  command_execution: 'execute',
  write: 'edit',
  write_file: 'edit',
  edit: 'edit',
  replace: 'edit',
  multiedit: 'edit',
  patch: 'edit',
  file_change: 'edit',
  read: 'read',
  read_file: 'read',
  glob: 'search',
  grep: 'search',
  list: 'search',
  webfetch: 'fetch',
};

function toolLine(t: ToolEvent): string {
  const kind = t.toolKind ? (KIND_OF_NAME[t.toolKind.toLowerCase()] ?? t.toolKind) : undefined;
  const target = kind === 'execute' ? (t.command ?? t.title) : (t.paths?.join(', ') ?? t.title);
  const verb = kind ? VERBS[kind] : undefined;
  if (verb && target) return `${verb} ${target}`;
  return t.title ?? (t.toolKind ? `using ${t.toolKind}` : 'using a tool');
}

/** `merged`: the tool call with its earlier updates, when `event` is one of them. */
export function nowDoingOf(event: AgentEvent, merged?: ToolEvent): string | undefined {
  let line: string | undefined;
  if (event.kind === 'tool') {
    const call = merged ?? event;
    if (call.status === 'completed' || call.status === 'failed') return undefined;
    line = toolLine(call);
  } else if (event.kind === 'thought') line = 'thinking';
  else if (event.kind === 'message') line = 'writing its reply';
  else if (event.kind === 'plan') line = 'planning';
  return line?.replace(/\s+/g, ' ').slice(0, MAX_NOW_DOING_CHARS);
}
