/**
 * What boocoder tells an ACP agent about itself, and what it keeps of what the agent says about
 * itself: shared by the task's session (session.ts) and the probe (handshake.ts), so that a probed
 * handshake is the one a task gets.
 */
import * as acp from '@agentclientprotocol/sdk/unstable';
import type { AgentInfo } from '../agent-backend.js';

export const INITIALIZE_PARAMS: acp.InitializeRequest = {
  protocolVersion: acp.PROTOCOL_VERSION,
  // No fs and no terminal: the agent edits its worktree itself (Gemini misbehaves otherwise).
  clientCapabilities: { fs: { readTextFile: false, writeTextFile: false }, terminal: false },
  clientInfo: { name: 'boocoder', version: '0.1.0' },
};

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
