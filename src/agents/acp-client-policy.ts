/**
 * What boocoder tells agents about itself and how it answers them, shared by the task driver and
 * the probe so that a probed handshake is the one a task gets.
 */
import * as acp from '@agentclientprotocol/sdk/unstable';

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
 * The agent works in its own worktree and boocoder reviews every change afterwards, so tool use is
 * allowed, but only once: `allow_always` could persist a grant into the agent's own config, and
 * Gemini refuses it in an untrusted folder.
 */
export function choosePermission(options: readonly acp.PermissionOption[]): acp.RequestPermissionResponse {
  const option =
    options.find((o) => o.kind === 'allow_once') ?? options.find((o) => o.kind.startsWith('allow_'));
  return option
    ? { outcome: { outcome: 'selected', optionId: option.optionId } }
    : { outcome: { outcome: 'cancelled' } };
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
