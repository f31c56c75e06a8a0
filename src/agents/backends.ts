/**
 * The backend of each stored execution path (tasks.execution_path), built once per process by
 * src/app.ts and closed with it.
 */
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import type { ExecutionPath } from '../db/task-inserts.js';
import { BoocoderError } from '../errors.js';
import type { SubtaskScopes } from '../subtasks/scope-tokens.js';
import { AcpBackend } from './acp/backend.js';
import type { WarmSessions } from './acp/warm-sessions.js';
import type { AgentBackend } from './agent-backend.js';
import { HeadlessBackend } from './headless/backend.js';
import { NativeBackend } from './native/backend.js';
import { OpencodeServeBackend } from './opencode-serve/backend.js';
import type { OpencodeServerHolder } from './opencode-serve/holder.js';

export type AgentBackends = Readonly<Partial<Record<ExecutionPath, AgentBackend>>>;

export interface AgentBackendsOptions {
  db: Db;
  config: Pick<Config, 'home' | 'childEnv' | 'taskTimeoutMs'>;
  warmSessions?: WarmSessions;
  opencodeServer?: OpencodeServerHolder;
  subtaskScopes?: SubtaskScopes;
}

export function createAgentBackends(o: AgentBackendsOptions): AgentBackends {
  return {
    acp: new AcpBackend({ config: o.config, warmSessions: o.warmSessions, subtaskScopes: o.subtaskScopes }),
    pty: new HeadlessBackend({ db: o.db, config: o.config, path: 'pty' }),
    // Qwen Code's own path is its headless stream-json run: the headless backend, under its own name.
    qwen: new HeadlessBackend({ db: o.db, config: o.config, path: 'qwen' }),
    opencode_server: new OpencodeServeBackend({ config: o.config, holder: o.opencodeServer }),
    native: new NativeBackend({ db: o.db, config: o.config }),
  };
}

/** The backend that runs a task stored with `executionPath` (a row from before paths existed: acp). */
export function backendOf(backends: AgentBackends, executionPath: string | null): AgentBackend {
  const backend = backends[(executionPath ?? 'acp') as ExecutionPath];
  if (!backend) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `no backend runs execution path "${executionPath}" in this version; queue the task again with another execution_path`,
    );
  }
  return backend;
}

/** Stops every backend's sessions and processes, one after another. */
export async function closeAgentBackends(backends: AgentBackends): Promise<void> {
  for (const backend of Object.values(backends)) await backend.close();
}
