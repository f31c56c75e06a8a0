/**
 * How an ACP session begins: `session/load` of the chat's earlier session when the caller asks for
 * it and the agent can (its `loadSession` capability), else `session/new`. Loading keeps the chat's
 * conversation across a boocoder restart or an idle close: the agent process is new, its memory of
 * the chat is not.
 */

import type { NewSessionResponse } from '@agentclientprotocol/sdk/unstable';
import * as acp from '@agentclientprotocol/sdk/unstable';
import type { Logger } from '../../log.js';
import { Interrupted } from '../turn-interruption.js';

export interface StartedSession {
  response: NewSessionResponse;
  /** True when the earlier session was loaded (its history was replayed as session/update). */
  resumed: boolean;
}

/**
 * Loads `resumeSessionId` when given and supported; a load the agent refuses (it no longer has that
 * session, its store was wiped) falls back to a new session rather than failing the task. A stop
 * (cancel, timeout, process death) while loading is not a refusal: it propagates.
 */
export async function startAcpSession(
  agent: acp.ClientContext,
  o: {
    cwd: string;
    resumeSessionId: string | undefined;
    canLoad: boolean;
    mcpServers: acp.McpServer[];
    untilStopped: <T>(work: Promise<T>) => Promise<T>;
    log: Logger;
  },
): Promise<StartedSession> {
  if (o.resumeSessionId && o.canLoad) {
    try {
      const loaded = await o.untilStopped(
        agent.request(acp.methods.agent.session.load, {
          sessionId: o.resumeSessionId,
          cwd: o.cwd,
          mcpServers: o.mcpServers,
        }),
      );
      return { response: { ...loaded, sessionId: o.resumeSessionId }, resumed: true };
    } catch (err) {
      if (err instanceof Interrupted) throw err;
      o.log.info('the agent could not load the earlier session; starting a new one', {
        reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown',
      });
    }
  }
  const created = await o.untilStopped(
    agent.request(acp.methods.agent.session.new, { cwd: o.cwd, mcpServers: o.mcpServers }),
  );
  return { response: created, resumed: false };
}
