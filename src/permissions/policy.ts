/**
 * The default permission policy, pure (strings only, no file system): unit-testable on its own.
 * responder.ts adds the file-system half and answers an agent's requests; gate.ts parks them for a
 * human under the `ask` policy.
 *
 * Permission requests are judged by the default policy: a tool call whose every location resolves
 * inside the task's worktree (and out of its `.git`) may run once; anything else is refused. The
 * policy keeps a cooperative agent (or one a prompt injection steers) inside its worktree; it is
 * not a sandbox: the agent process runs with the user's rights and could write elsewhere without
 * asking. What it changes inside the worktree is reviewed before it reaches the repository.
 */
import { isAbsolute, relative, sep } from 'node:path';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import { checkRepoPath, MAX_PATH_BYTES } from '../worktrees/path-policy.js';

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

/** How the requests the default policy allows are answered: allowed once, or by a human. */
export const PERMISSION_POLICIES = ['auto', 'ask'] as const;
export type PermissionPolicy = (typeof PERMISSION_POLICIES)[number];

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

export const allow = (reason: string): PermissionVerdict => ({ allow: true, reason });
export const refuse = (reason: string): PermissionVerdict => ({ allow: false, reason });

/** Why a raw location string is refused before any file-system lookup, or undefined. */
export function refuseRawPath(path: unknown): string | undefined {
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
 * boocoder's own sub-task tools, as agents title their calls: `boocoder_new_task` (opencode's MCP
 * tool naming), `mcp__boocoder__new_task` (Claude Code's), `boocoder__new_task` or `new_task
 * (boocoder MCP Server)` (Gemini CLI's). Only opencode's form is exercised by a real agent in the tests
 * so far. They are allowed unattended: the server side confines them to the task's
 * own children in its own project (services/subtasks.ts). A title is the agent's word, so a
 * tool mislabelled this way gains nothing the agent could not already do.
 */
const SUBTASK_TOOL_TITLE =
  /^(?:mcp__boocoder__|boocoder__?)(?:new_task|get_task|list_tasks|list_pending_changes)$|^(?:new_task|get_task|list_tasks|list_pending_changes) \(boocoder MCP Server\)$/;

export function isSubtaskToolCall(title: string | null | undefined, locations: number): boolean {
  return locations === 0 && typeof title === 'string' && SUBTASK_TOOL_TITLE.test(title);
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
