/**
 * Records a task's agent process (pid, start time, host, boot) on the task as soon as it runs and
 * before it gets its prompt: if this dispatcher dies from then on, whoever takes the lease over can
 * find the agent and kill it (orphaned-agents.ts), never a process that only reuses its pid.
 */
import { describeAgentProcess } from '../agents/orphaned-agents.js';
import type { Db } from '../db/db.js';
import { recordAgentProcess } from '../db/tasks.js';
import type { Logger } from '../log.js';

export function agentProcessRecorder(db: Db, taskId: string, owner: string, log: Logger) {
  return async (pid: number): Promise<void> => {
    const rec = describeAgentProcess(pid);
    if (!rec) return;
    try {
      await recordAgentProcess(db, taskId, owner, rec);
    } catch (err) {
      log.warn('could not record the agent process', { taskId, err });
    }
  };
}
