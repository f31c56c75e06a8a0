/**
 * The dispatcher's lease sweep: tasks whose lease expired belong to a dispatcher that died. The
 * agents such a dispatcher left running on this host are killed (while the expired rows are still
 * locked, so nobody can claim them yet) before the tasks go back to the queue.
 */

import { killOrphanedAgentGroup } from '../agents/orphaned-agents.js';
import type { Db } from '../db/db.js';
import { type ExpiredLease, releaseExpiredLeases } from '../db/tasks.js';
import type { Logger } from '../log.js';

/** Kills what dead dispatchers on this host left running, before their tasks can be claimed again. */
async function stopOrphanedAgents(logger: Logger, expired: ExpiredLease[]): Promise<void> {
  for (const e of expired) {
    if (e.agentPid === null || e.agentPidStarted === null || !e.agentHost || !e.agentBootId) continue;
    const outcome = await killOrphanedAgentGroup({
      pid: e.agentPid,
      startTicks: e.agentPidStarted,
      host: e.agentHost,
      bootId: e.agentBootId,
    });
    const log = logger.child({ taskId: e.id, pgid: e.agentPid });
    if (outcome === 'killed') log.info('killed the agent of an expired lease');
    else if (outcome === 'lingering') log.warn('the agent of an expired lease survived SIGKILL');
    else if (outcome === 'other-host') log.warn('the agent of an expired lease ran on another host');
  }
}

/**
 * Releases expired leases except the sweeping dispatcher's own running tasks (`keep`); returns how
 * many it released, 0 when the sweep failed (logged: the next sweep tries again).
 */
async function sweepExpiredLeases(
  db: Db,
  logger: Logger,
  keep: { owner: string; ids: string[] },
): Promise<number> {
  try {
    const released = await releaseExpiredLeases(db, {
      beforeRelease: (expired) => stopOrphanedAgents(logger, expired),
      keep,
    });
    if (released > 0) logger.info('released expired leases', { count: released });
    return released;
  } catch (err) {
    logger.warn('lease sweep failed', { err });
    return 0;
  }
}

/** A dispatcher's sweeps, one at a time: a sweep slower than its interval must not pile up behind itself. */
export class ExpiredLeaseSweeper {
  private sweeping: Promise<number> | undefined;

  constructor(
    private readonly o: {
      db: Db;
      logger: Logger;
      /** The sweeping dispatcher's own tasks (running or claimed ahead): never released by it. */
      keep(): { owner: string; ids: string[] };
      /** Leases were released: their tasks are claimable again. */
      released(): void;
    },
  ) {}

  sweepOnce(): Promise<number> {
    this.sweeping ??= this.sweep().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** Resolves once no sweep is in flight. */
  async settle(): Promise<void> {
    await this.sweeping;
  }

  private async sweep(): Promise<number> {
    const released = await sweepExpiredLeases(this.o.db, this.o.logger, this.o.keep());
    if (released > 0) this.o.released();
    return released;
  }
}
