/**
 * Builds the running parts of one boocoder process: database (migrated), task events, and optionally
 * the dispatcher. The CLI decides which transport sits in front.
 */
import { join } from 'node:path';
import { WarmSessions } from './agents/acp/warm-sessions.js';
import { closeAgentBackends, createAgentBackends } from './agents/backends.js';
import { OpencodeServerHolder } from './agents/opencode-serve/holder.js';
import type { Config } from './config.js';
import { markIdleAgentSessionEnded } from './db/agent-sessions.js';
import type { Db } from './db/db.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { createAgentTaskRunner } from './dispatcher/run-task.js';
import type { TaskRunner } from './dispatcher/task-runner.js';
import type { Logger } from './log.js';
import { applyJournalDir } from './services/changes.js';
import type { Deps } from './services/deps.js';
import { adoptLocalProjects } from './services/project-machine.js';
import { TaskEvents } from './services/task-events.js';
import { scheduleWorktreeCleanup, type WorktreeCleanupSchedule } from './services/worktree-cleanup.js';
import { SubtaskScopes } from './subtasks/scope-tokens.js';
import { sweepApplyJournals } from './worktrees/apply-journal.js';

/** How often finished sessions' worktrees are looked for (the TTL itself is configured). */
const WORKTREE_CLEANUP_INTERVAL_MS = 3_600_000;

export interface App {
  deps: Deps;
  dispatcher?: Dispatcher;
  close(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  logger: Logger;
  withDispatcher: boolean;
  /** Tests and benchmarks pass an open database or another runner; production opens its own. */
  db?: Db;
  runTask?: TaskRunner;
}

export async function startApp(o: AppOptions): Promise<App> {
  const db =
    o.db ??
    (await openDatabase({
      databaseUrl: o.config.databaseUrl,
      home: o.config.home,
      pgDir: o.config.pgDir,
      pgUser: o.config.pgUser,
      schema: o.config.dbSchema,
      logger: o.logger,
    }));
  try {
    await migrate(db, { logger: o.logger });
    await adoptLocalProjects(db, o.config.machine, o.logger);
    // Temp files a batch apply killed mid-way left in users' repositories (apply-journal.ts).
    const swept = await sweepApplyJournals(applyJournalDir(o));
    if (swept > 0) o.logger.info('removed temp files an interrupted apply left', { files: swept });
    const events = new TaskEvents();
    await events.start(db);
    // Agent processes kept between a chat's tasks; closed (process groups killed) in close().
    const warmSessions = new WarmSessions({
      idleMs: o.config.agentIdleMs,
      firstIdleMs: o.config.agentFirstIdleMs,
      maxWarm: o.config.maxWarmAgents,
      maxMemoryBytes: o.config.maxWarmAgentMemoryBytes,
      logger: o.logger.child({ part: 'warm-sessions' }),
      onGone: (key, reason) => markIdleAgentSessionEnded(db, key.chatId, key.agent, reason),
    });
    const opencodeServer = new OpencodeServerHolder({
      home: o.config.home,
      childEnv: o.config.childEnv,
      logger: o.logger.child({ part: 'opencode-serve' }),
    });
    const subtaskScopes = new SubtaskScopes();
    const backends = createAgentBackends({
      db,
      config: o.config,
      warmSessions,
      opencodeServer,
      subtaskScopes,
    });
    const runnerDeps = { db, config: o.config, logger: o.logger, backends };
    const dispatcher = o.withDispatcher
      ? new Dispatcher({
          db,
          logger: o.logger.child({ part: 'dispatcher' }),
          runTask: o.runTask ?? createAgentTaskRunner(runnerDeps),
          concurrency: o.config.concurrency,
          pollMs: o.config.pollMs,
          leaseMs: o.config.leaseMs,
          shutdownGraceMs: o.config.shutdownGraceMs,
          claimAhead: { enabled: o.config.claimAhead },
          machineId: o.config.machine.id,
        })
      : undefined;
    const deps: Deps = {
      ...runnerDeps,
      events,
      subtaskScopes,
      warmSessions,
      opencodeServer,
      ...(dispatcher ? { dispatcher } : {}),
    };
    let cleanup: WorktreeCleanupSchedule | undefined;
    if (dispatcher) {
      await dispatcher.start();
      // Only a process that runs tasks creates worktrees, so only it sweeps them (first pass now).
      cleanup = scheduleWorktreeCleanup({
        db,
        logger: o.logger.child({ part: 'worktree-cleanup' }),
        worktreesRoot: join(o.config.home, 'worktrees'),
        ttlMs: o.config.worktreeTtlMs,
        machineId: o.config.machine.id,
        intervalMs: WORKTREE_CLEANUP_INTERVAL_MS,
      });
    }
    return {
      deps,
      dispatcher,
      async close() {
        await cleanup?.stop();
        await dispatcher?.stop();
        await closeAgentBackends(backends);
        await events.stop();
        if (!o.db) await db.close();
      },
    };
  } catch (err) {
    if (!o.db) await db.close();
    throw err;
  }
}
