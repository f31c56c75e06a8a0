/**
 * The backend of each stored execution path (tasks.execution_path), built once per process by
 * src/app.ts and closed with it.
 */
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import { AcpBackend } from './acp/backend.js';
import type { WarmSessions } from './acp/warm-sessions.js';
import type { AgentBackend } from './agent-backend.js';
import { HeadlessBackend } from './headless/backend.js';
import { OpencodeServeBackend } from './opencode-serve/backend.js';
import type { OpencodeServerHolder } from './opencode-serve/holder.js';

export const STORED_EXECUTION_PATHS = ['acp', 'native', 'pty'] as const;
export type StoredExecutionPath = (typeof STORED_EXECUTION_PATHS)[number];

export type AgentBackends = Readonly<Record<StoredExecutionPath, AgentBackend>>;

export interface AgentBackendsOptions {
  db: Db;
  config: Pick<Config, 'home' | 'childEnv' | 'taskTimeoutMs'>;
  warmSessions?: WarmSessions;
  opencodeServer?: OpencodeServerHolder;
}

export function createAgentBackends(o: AgentBackendsOptions): AgentBackends {
  return {
    acp: new AcpBackend({ config: o.config, warmSessions: o.warmSessions }),
    pty: new HeadlessBackend({ db: o.db, config: o.config }),
    native: new OpencodeServeBackend({ config: o.config, holder: o.opencodeServer }),
  };
}

/** The backend that runs a task stored with `executionPath` (a row from before paths existed: acp). */
export function backendOf(backends: AgentBackends, executionPath: string | null): AgentBackend {
  const known = STORED_EXECUTION_PATHS.find((p) => p === executionPath);
  return backends[known ?? 'acp'];
}

/** Stops every backend's sessions and processes, one after another. */
export async function closeAgentBackends(backends: AgentBackends): Promise<void> {
  for (const backend of Object.values(backends)) await backend.close();
}
