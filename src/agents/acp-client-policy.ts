/**
 * What boocoder tells agents about itself and how it answers them, shared by the task driver and
 * the probe so that a probed handshake is the one a task gets.
 *
 * Permission requests are judged by the default policy: a tool call whose every location resolves
 * inside the task's worktree (and out of its `.git`) may run once; anything else is refused. The
 * policy keeps a cooperative agent (or one a prompt injection steers) inside its worktree; it is
 * not a sandbox: the agent process runs with the user's rights and could write elsewhere without
 * asking. What it changes inside the worktree is reviewed before it reaches the repository.
 * `judgeToolCall` is pure (strings only); `judgePermissionRequest` adds the file-system half.
 */
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import * as acp from '@agentclientprotocol/sdk/unstable';
import type { Logger } from '../log.js';
import { checkRepoPath, MAX_PATH_BYTES } from '../worktrees/path-policy.js';
import { permissionEvent } from './acp/events.js';
import { type AgentEventSink, emitTo } from './agent-events.js';

export interface AgentInfo {
  name: string;
  title?: string;
  version: string;
}

export const INITIALIZE_PARAMS: acp.InitializeRequest = {
  protocolVersion: acp.PROTOCOL_VERSION,
  // No fs and no terminal: the agent edits its worktree itself (Gemini misbehaves otherwise).
  clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
  clientInfo: { name: 'boocoder', version: '0.1.0' },
};

/**
 * Picks the option that allows a tool call, but only once: `allow_always` could persist a grant
 * into the agent's own config, and Gemini refuses it in an untrusted folder.
 */
export function choosePermission(options: readonly acp.PermissionOption[]): acp.RequestPermissionResponse {
  const option =
    options.find((o) => o.kind === 'allow_once') ?? options.find((o) => o.kind.startsWith('allow_'));
  return option
    ? { outcome: { outcome: 'selected', optionId: option.optionId } }
    : { outcome: { outcome: 'cancelled' } };
}

/** Refuses a tool call once (`reject_always` would persist); cancelled when the agent offers no reject_once. */
export function rejectPermission(options: readonly acp.PermissionOption[]): acp.RequestPermissionResponse {
  const option = options.find((o) => o.kind === 'reject_once');
  return option
    ? { outcome: { outcome: 'selected', optionId: option.optionId } }
    : { outcome: { outcome: 'cancelled' } };
}

export interface PermissionVerdict {
  allow: boolean;
  reason: string;
}

/** A location as the agent sent it, and its real path (null when it cannot be resolved safely). */
export interface ResolvedLocation {
  path: string;
  resolved: string | null;
}

/** What an agent may do unattended once every path it names is inside its worktree. */
const WORKTREE_KINDS: ReadonlySet<string> = new Set([
  'read',
  'edit',
  'delete',
  'move',
  'search',
  'execute',
  'think',
]);
/** Kinds that write: they may not name the worktree folder itself (deleting or moving it). */
const WRITING_KINDS: ReadonlySet<string> = new Set(['edit', 'delete', 'move']);
/**
 * Kinds allowed without any location. A command runs with the worktree as its cwd (a shell line
 * is not parsed: see the module comment for why that is acceptable); thinking touches nothing. An
 * edit or read that names no path cannot be shown to stay inside, so it is refused.
 */
const LOCATIONLESS_KINDS: ReadonlySet<string> = new Set(['execute', 'think']);
export const MAX_LOCATIONS = 64;

const allow = (reason: string): PermissionVerdict => ({ allow: true, reason });
const refuse = (reason: string): PermissionVerdict => ({ allow: false, reason });

/** Why a raw location string is refused before any file-system lookup, or undefined. */
function refuseRawPath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'a location has no path';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return 'a location path is too long';
  // NUL truncates a path in C code: the path checked and the path opened would differ.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'a location path contains control characters';
  // After a symlinked folder the kernel resolves `..` against the link's target, not the text:
  // `link/../x` can climb out where a string check sees `x`.
  if (path.split(/[\\/]/).includes('..')) return 'a location path contains `..`';
  return undefined;
}

/** Why a resolved path is refused, or undefined when it is inside the worktree and out of `.git`. */
function refuseResolvedPath(resolved: string, worktree: string, writes: boolean): string | undefined {
  const rel = relative(worktree, resolved);
  // Absolute paths elsewhere and climbs (`~/.ssh/…`, another session's worktree, the user's repository).
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    return 'a location is outside the worktree';
  if (rel === '') return writes ? 'a location names the worktree folder itself' : undefined;
  // `.git` (the worktree's link to the repository), `.gitmodules`, and their HFS+/NTFS aliases:
  // a write there turns the next git command boocoder runs into code execution.
  const check = checkRepoPath(rel.split(sep).join('/'));
  return check.ok ? undefined : `a location is refused: ${check.reason}`;
}

/**
 * The default policy on strings only. `worktree` is the worktree's real path; each location's
 * `resolved` is its real path (symlinks followed), so a symlink planted in the worktree that
 * points out of it (`src -> /etc`, `notes.txt -> ~/.ssh/authorized_keys`) or into `.git`
 * (`hooks -> .git/hooks`) is judged by where it leads.
 */
export function judgeToolCall(
  kind: string | null | undefined,
  locations: readonly ResolvedLocation[],
  worktree: string,
): PermissionVerdict {
  const k = kind ?? 'other';
  if (!WORKTREE_KINDS.has(k)) return refuse(`a tool call of kind ${k} is not allowed unattended`);
  if (locations.length === 0) {
    return LOCATIONLESS_KINDS.has(k)
      ? allow(`a ${k} tool call without locations runs in the worktree`)
      : refuse(`a ${k} tool call names no location, so it cannot be shown to stay in the worktree`);
  }
  if (locations.length > MAX_LOCATIONS) return refuse('the tool call names too many locations');
  for (const location of locations) {
    const raw = refuseRawPath(location.path);
    if (raw) return refuse(raw);
    // A dangling or looping symlink: the write would follow it to wherever it points.
    if (location.resolved === null) return refuse('a location does not resolve to a real path');
    const reason = refuseResolvedPath(location.resolved, worktree, WRITING_KINDS.has(k));
    if (reason) return refuse(reason);
  }
  return allow(`every location of the ${k} tool call is inside the worktree`);
}

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

/** agentInfo from an initialize response, cut to sane lengths (agents are not trusted). */
export function agentInfoOf(response: acp.InitializeResponse): AgentInfo | undefined {
  const info = response.agentInfo;
  if (!info) return undefined;
  const cut = (s: unknown) => String(s).slice(0, 200);
  return {
    name: cut(info.name),
    version: cut(info.version),
    ...(info.title ? { title: cut(info.title) } : {}),
  };
}
