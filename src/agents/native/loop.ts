/**
 * One turn of the native agent: the user's prompt, then model steps until the model answers
 * without a tool call, bounded by a step limit and a context budget (the oldest tool outputs are
 * trimmed first, and say so). Tools that change the worktree or run a program pass the permission
 * policy: under `ask` a human answers (the task waits as blocked), under `auto` they are allowed.
 */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { Logger } from '../../log.js';
import type { PermissionAsker } from '../../permissions/responder.js';
import type { TurnStopReason } from '../agent-backend.js';
import { type AgentEventSink, emitTo, toolEvent, usageEvent } from '../agent-events.js';
import { NATIVE_TOOLS, runTool, safePath, worktreeRoot } from './tools.js';
import type { ModelWire, ToolCall } from './wire.js';

/** Model calls per task: a model stuck in a tool loop ends the turn instead of spending forever. */
export const MAX_STEPS = 40;
/** Characters of conversation sent per step (about 100k tokens); older tool outputs go first. */
export const CONTEXT_BUDGET_CHARS = 400_000;
const MAX_COMMAND_OUTPUT_BYTES = 32 * 1024;

export interface NativeTurnOptions {
  wire: ModelWire;
  /** The chat's conversation so far; the turn appends to it. */
  messages: unknown[];
  prompt: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  signal: AbortSignal;
  onSpawn: (pid: number) => Promise<void>;
  asker?: PermissionAsker;
  commandTimeoutMs: number;
  logger: Logger;
  taskId: string;
  /** The task's transcript: the model's text, each tool call and its outcome, usage per step. */
  onEvent?: AgentEventSink;
}

export interface NativeTurn {
  stopReason: TurnStopReason;
  text: string;
  steps: number;
  inputTokens: number;
  outputTokens: number;
}

function systemPrompt(cwd: string): string {
  return [
    'You are boocode, a coding agent working in a git worktree.',
    `Working directory: ${cwd}`,
    'Use the tools to read, search, write, edit and delete files and to run commands.',
    'Paths are relative to the working directory. Finish with a short summary of what you changed.',
  ].join('\n');
}

/** Trims the oldest tool outputs until the conversation fits the budget. */
export function trimContext(wire: ModelWire, messages: unknown[], budget = CONTEXT_BUDGET_CHARS): void {
  let size = JSON.stringify(messages).length;
  for (const slot of wire.toolResultSlots(messages)) {
    if (size <= budget) return;
    const text = slot.get();
    if (text.startsWith('[output trimmed')) continue;
    const note = `[output trimmed: ${text.length} characters dropped to stay within the context budget]`;
    slot.set(note);
    size -= text.length - note.length;
  }
}

/** Asks the turn's human (the `ask` policy) before a tool acts; true when allowed. */
async function permitted(o: NativeTurnOptions, call: ToolCall, kind: 'edit' | 'delete' | 'execute') {
  if (!o.asker) return true;
  const path = typeof call.args.path === 'string' ? call.args.path : undefined;
  const command = typeof call.args.command === 'string' ? call.args.command : undefined;
  const request: acp.RequestPermissionRequest = {
    sessionId: o.taskId,
    toolCall: {
      toolCallId: call.id,
      title: command ? `run: ${command.slice(0, 200)}` : `${call.name} ${path ?? ''}`.trim(),
      kind,
      status: 'pending',
      rawInput: call.args,
      ...(path ? { locations: [{ path: path.startsWith('/') ? path : `${o.cwd}/${path}` }] } : {}),
    },
    options: [
      { optionId: 'allow', name: 'Allow', kind: 'allow_once' },
      { optionId: 'reject', name: 'Reject', kind: 'reject_once' },
    ],
  };
  const answer = await o.asker(request, o.signal);
  return answer.outcome.outcome === 'selected' && answer.outcome.optionId === 'allow';
}

/** Runs one tool call and reports it to the transcript: started, then completed or failed. */
async function runReportedCall(o: NativeTurnOptions, root: string, call: ToolCall): Promise<string> {
  const tool = NATIVE_TOOLS.find((t) => t.name === call.name);
  const path = typeof call.args.path === 'string' ? call.args.path : undefined;
  const fields = {
    id: call.id,
    toolKind: tool?.acts ?? call.name,
    title: `${call.name}${path ? ` ${path}` : ''}`,
    paths: path ? [path] : [],
    command: call.args.command,
  };
  emitTo(o.onEvent, toolEvent({ ...fields, status: 'in_progress' }));
  const result = await runCall(o, root, call);
  emitTo(o.onEvent, toolEvent({ ...fields, status: result.startsWith('error:') ? 'failed' : 'completed' }));
  return result;
}

async function runCall(o: NativeTurnOptions, root: string, call: ToolCall): Promise<string> {
  const tool = NATIVE_TOOLS.find((t) => t.name === call.name);
  // A path the policy refuses never reaches the human: nobody is asked to allow `../.ssh/x`.
  if (tool && (tool.acts === 'edit' || tool.acts === 'delete')) {
    const refused = await safePath({ root }, call.args.path).then(
      () => undefined,
      (err: Error) => `error: ${String(err.message ?? err).slice(0, 500)}`,
    );
    if (refused) return refused;
  }
  if (tool && tool.acts !== 'read' && !(await permitted(o, call, tool.acts))) {
    return 'error: permission denied by the user; do not retry this action';
  }
  const commands = {
    cwd: root,
    env: o.env,
    timeoutMs: o.commandTimeoutMs,
    maxOutputBytes: MAX_COMMAND_OUTPUT_BYTES,
    signal: o.signal,
    onSpawn: o.onSpawn,
  };
  try {
    return await runTool({ root, commands }, call.name, call.args);
  } catch (err) {
    // The model reads its own mistakes (a refused path, a missing file) and may correct them.
    const code = (err as NodeJS.ErrnoException).code;
    return `error: ${code === 'ENOENT' ? 'no such file' : ((err as Error).message ?? String(err)).slice(0, 500)}`;
  }
}

export async function runNativeTurn(o: NativeTurnOptions): Promise<NativeTurn> {
  const root = await worktreeRoot(o.cwd);
  const turn: NativeTurn = { stopReason: 'end_turn', text: '', steps: 0, inputTokens: 0, outputTokens: 0 };
  o.wire.addUser(o.messages, o.prompt);
  const system = systemPrompt(root);
  while (true) {
    if (o.signal.aborted) return { ...turn, stopReason: 'cancelled' };
    if (turn.steps >= MAX_STEPS) {
      o.logger.info('native agent reached its step limit', { steps: turn.steps });
      return { ...turn, stopReason: 'max_turn_requests' };
    }
    trimContext(o.wire, o.messages);
    let step: Awaited<ReturnType<ModelWire['step']>>;
    try {
      step = await o.wire.step(o.messages, system, NATIVE_TOOLS, o.signal);
    } catch (err) {
      if (o.signal.aborted) return { ...turn, stopReason: 'cancelled' };
      throw err;
    }
    turn.steps += 1;
    turn.inputTokens += step.inputTokens;
    turn.outputTokens += step.outputTokens;
    emitTo(o.onEvent, usageEvent({ inputTokens: step.inputTokens, outputTokens: step.outputTokens }));
    if (step.text) {
      turn.text = step.text;
      emitTo(o.onEvent, { kind: 'message', text: step.text });
    }
    if (step.calls.length === 0) return turn;
    const results: { id: string; text: string }[] = [];
    for (const call of step.calls) results.push({ id: call.id, text: await runReportedCall(o, root, call) });
    o.wire.addToolResults(o.messages, results);
  }
}
