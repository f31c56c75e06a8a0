/**
 * Answers an agent's permission requests (ACP session/request_permission, and opencode serve's
 * `permission.asked` turned into one): the default policy (policy.ts) judges each request after
 * its paths are resolved on disk here; one it allows goes to the turn's asker under the `ask`
 * policy (gate.ts), else is allowed once.
 */
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import { permissionEvent } from '../agents/acp/events.js';
import { type AgentEventSink, emitTo } from '../agents/agent-events.js';
import type { Logger } from '../log.js';
import {
  allow,
  choosePermission,
  isSubtaskToolCall,
  judgeToolCall,
  MAX_LOCATIONS,
  type PermissionVerdict,
  refuse,
  refuseRawPath,
  rejectPermission,
} from './policy.js';

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * The real path of `path`: its deepest existing ancestor resolved, the missing rest appended (a
 * file about to be created). Null when an existing entry does not resolve (a dangling symlink, a
 * loop, no permission).
 */
export async function resolveLocationPath(path: string): Promise<string | null> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      return join(await realpath(current), ...missing);
    } catch (err) {
      if (!isMissing(err)) return null;
      const present = await lstat(current).then(
        () => true,
        () => false,
      );
      if (present) return null;
      const parent = dirname(current);
      if (parent === current) return null;
      missing.unshift(basename(current));
      current = parent;
    }
  }
}

/** The default policy for a permission request from an agent working in `cwd`. */
export async function judgePermissionRequest(
  toolCall: acp.ToolCallUpdate,
  cwd: string,
): Promise<PermissionVerdict> {
  const worktree = await realpath(cwd).catch(() => null);
  if (worktree === null) return refuse('the worktree does not resolve');
  const locations = toolCall.locations ?? [];
  if (isSubtaskToolCall(toolCall.title, locations.length))
    return allow('a boocoder sub-task tool, confined by its scoped credential');
  if (locations.length > MAX_LOCATIONS) return refuse('the tool call names too many locations');
  const resolved = await Promise.all(
    locations.map(async ({ path }) => ({
      path,
      // Relative paths mean the agent's cwd, the worktree; refused raw paths are never looked up.
      resolved: refuseRawPath(path) ? null : await resolveLocationPath(resolve(cwd, path)),
    })),
  );
  return judgeToolCall(toolCall.kind, resolved, worktree);
}

/**
 * Answers, for one turn, the requests the default policy allowed (the `ask` policy hands them to a
 * human). `signal` aborts when the turn ends: the answer is then cancelled.
 */
export type PermissionAsker = (
  request: acp.RequestPermissionRequest,
  signal: AbortSignal,
) => Promise<acp.RequestPermissionResponse>;

const CANCELLED: acp.RequestPermissionResponse = { outcome: { outcome: 'cancelled' } };

/**
 * Answers one session's permission requests. Every request is judged by the default policy; one it
 * allows goes to the turn's asker when there is one (the `ask` policy), else is allowed once. A
 * request outside a prompt turn, or one whose turn ended meanwhile, is cancelled: nothing may act
 * for a turn that is over (nor slip past a human after a cancel).
 */
export class PermissionResponder {
  private asker: PermissionAsker | undefined;
  private turn: AbortController | undefined;
  private onEvent: AgentEventSink | undefined;

  constructor(
    private readonly cwd: string,
    private readonly log: Logger,
  ) {}

  /** `onEvent` hears every request of the turn with its answer (the task's transcript). */
  beginTurn(asker: PermissionAsker | undefined, onEvent?: AgentEventSink): void {
    this.turn = new AbortController();
    this.asker = asker;
    this.onEvent = onEvent;
  }

  /** Requests still waiting for an asker are answered cancelled, as ACP requires on session/cancel. */
  endTurn(): void {
    this.turn?.abort();
    this.turn = undefined;
    this.asker = undefined;
    this.onEvent = undefined;
  }

  async answer(request: acp.RequestPermissionRequest): Promise<acp.RequestPermissionResponse> {
    const sink = this.onEvent;
    const response = await this.decide(request);
    emitTo(sink, permissionEvent(request, response));
    return response;
  }

  private async decide(request: acp.RequestPermissionRequest): Promise<acp.RequestPermissionResponse> {
    const { asker, turn } = this;
    if (!turn) {
      this.log.info('permission request outside a turn cancelled', { kind: request.toolCall.kind });
      return CANCELLED;
    }
    const verdict = await judgePermissionRequest(request.toolCall, this.cwd);
    const fields = { kind: request.toolCall.kind, reason: verdict.reason };
    if (!verdict.allow) {
      this.log.info('permission refused by policy', fields);
      return rejectPermission(request.options);
    }
    if (turn.signal.aborted) return CANCELLED;
    if (!asker) return choosePermission(request.options);
    this.log.debug('permission handed to a human', fields);
    try {
      return await asker(request, turn.signal);
    } catch (err) {
      // Without a human's answer nothing is allowed.
      this.log.warn('asking for a permission failed', { err });
      return CANCELLED;
    }
  }
}
