/**
 * `opencode serve`'s permission requests, judged and answered like an ACP agent's. opencode 1.18
 * sends `permission.asked` with {id, sessionID, permission, patterns, metadata, always, tool?} and
 * takes the answer at POST /permission/:id/reply as {reply: once | always | reject}. The request is
 * turned into an ACP permission request so that the one default policy (../acp-client-policy.ts)
 * judges it and, under the `ask` policy, the same gate stores it for a human
 * (services/permissions.ts). Only `once` and `reject` are offered: `always` would store a grant in
 * the shared server and let later requests (of any task in the project) skip the question.
 */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import { MAX_LOCATIONS } from '../../permissions/policy.js';
import type { PermissionResponder } from '../../permissions/responder.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export type PermissionReply = 'once' | 'reject';

export const SERVE_PERMISSION_OPTIONS: readonly acp.PermissionOption[] = [
  { optionId: 'once', name: 'Allow once', kind: 'allow_once' },
  { optionId: 'reject', name: 'Reject', kind: 'reject_once' },
];

/** Agent-sent strings are cut before they are judged, stored or shown. */
const MAX_TITLE_PATTERNS = 64;
const MAX_TITLE_CHARS = 1000;

/**
 * opencode's permission names as ACP tool kinds. Anything not listed (external_directory, doom_loop,
 * task, skill...) becomes `other`, which the default policy refuses: opencode asks
 * `external_directory` before a tool reaches outside the worktree, so refusing it keeps the agent in.
 */
const KINDS: Readonly<Record<string, acp.ToolKind>> = {
  edit: 'edit',
  read: 'read',
  glob: 'search',
  grep: 'search',
  list: 'search',
  bash: 'execute',
  webfetch: 'fetch',
  websearch: 'fetch',
  codesearch: 'fetch',
};

/**
 * Where the request acts, as locations the policy resolves against the worktree. Edits and reads
 * name their files in `patterns` (relative to the worktree) and edits also in `metadata.filepath`;
 * both are judged, raw, so a `../` in either is refused. A search names its folder in
 * `metadata.path` (the worktree when absent); its patterns are search expressions, not paths. A
 * command's patterns are command lines: it runs in the worktree and names no location.
 */
function locationsOf(kind: acp.ToolKind, request: Json, directory: string): acp.ToolCallLocation[] {
  const metadata = isObject(request.metadata) ? request.metadata : {};
  // One past the policy's bound: a request naming too many is refused, not silently cut.
  const patterns = (Array.isArray(request.patterns) ? request.patterns : []).slice(0, MAX_LOCATIONS + 1);
  let paths: unknown[] = [];
  if (kind === 'edit' || kind === 'read')
    paths = metadata.filepath === undefined ? patterns : [metadata.filepath, ...patterns];
  else if (kind === 'search') paths = [metadata.path ?? directory];
  // A non-string entry becomes '' so that the policy refuses it rather than overlooks it.
  return [...new Set(paths.map((p) => (typeof p === 'string' ? p : '')))].map((path) => ({ path }));
}

/** A `permission.asked` payload as the ACP request the policy and the `ask` gate work on. */
export function toAcpPermissionRequest(request: Json, directory: string): acp.RequestPermissionRequest {
  const permission = (str(request.permission) ?? 'unknown').slice(0, 100);
  // Own keys only: `constructor` or `__proto__` would otherwise read Object's prototype.
  const kind = Object.hasOwn(KINDS, permission) ? (KINDS[permission] as acp.ToolKind) : 'other';
  const patterns = (Array.isArray(request.patterns) ? request.patterns : []).filter(
    (p): p is string => typeof p === 'string',
  );
  const tool = isObject(request.tool) ? request.tool : {};
  const title = `${permission}: ${patterns.slice(0, MAX_TITLE_PATTERNS).join(', ')}`.slice(
    0,
    MAX_TITLE_CHARS,
  );
  return {
    sessionId: str(request.sessionID) ?? '',
    toolCall: {
      toolCallId: str(tool.callID) ?? str(request.id) ?? '',
      title,
      kind,
      locations: locationsOf(kind, request, directory),
    },
    options: [...SERVE_PERMISSION_OPTIONS],
  };
}

/** opencode's reply for an ACP answer: anything but the allow option (cancelled included) refuses. */
export function replyOf(response: acp.RequestPermissionResponse): PermissionReply {
  const { outcome } = response;
  return outcome.outcome === 'selected' && outcome.optionId === 'once' ? 'once' : 'reject';
}

/**
 * The reply to one request of a turn working in `directory`: the default policy first, then the
 * turn's human (the `ask` policy) or an allow-once. The responder cancels, hence refuses, a
 * request still waiting when the turn ends.
 */
export async function answerServePermission(
  responder: PermissionResponder,
  request: Json,
  directory: string,
): Promise<PermissionReply> {
  return replyOf(await responder.answer(toAcpPermissionRequest(request, directory)));
}
