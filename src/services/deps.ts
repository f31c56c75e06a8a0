/** What services, tools and the dispatcher share. Built once per process by src/app.ts. */
import type { WarmSessions } from '../agents/acp/warm-sessions.js';
import type { AgentBackends } from '../agents/backends.js';
import type { OpencodeServerHolder } from '../agents/opencode-serve/holder.js';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import type { SlotReserver } from '../dispatcher/slot-reservation.js';
import type { Logger } from '../log.js';
import type { SubtaskScopes } from '../subtasks/scope-tokens.js';
import type { TaskEvents } from './task-events.js';

export interface Deps {
  db: Db;
  config: Config;
  logger: Logger;
  events: TaskEvents;
  /** The backend of each execution path: the dispatcher runs every task's turn through one. */
  backends: AgentBackends;
  /** Live agent sessions kept between a chat's tasks; without it every task starts its agent. */
  warmSessions?: WarmSessions;
  /** The shared `opencode serve` (execution path opencode_server), started on first use. */
  opencodeServer?: OpencodeServerHolder;
  /** This process's dispatcher, when it runs one: new_task hands it tasks directly (claim at insert). */
  dispatcher?: SlotReserver;
  /** Credentials scoped to one running task, for agents that queue sub-tasks (src/subtasks/). */
  subtaskScopes?: SubtaskScopes;
}
