/**
 * A task attempt's transcript recorder, its start announced (the "now doing" line reset, listeners
 * told) and its start and end logged at `info`: one line each, for whoever watches `serve`'s log.
 */
import type { TurnUsage } from '../agents/agent-backend.js';
import { errorEvent } from '../agents/agent-events.js';
import type { Db } from '../db/db.js';
import type { Task } from '../db/rows.js';
import { markTaskStarted } from '../db/task-events.js';
import { toPublicError } from '../errors.js';
import type { Logger } from '../log.js';
import { TranscriptRecorder } from '../transcripts/transcript-recorder.js';
import type { outcomeOf } from './task-outcome.js';

export interface TaskTranscript {
  recorder: TranscriptRecorder;
  /** The run is over: its error (if any) is recorded and everything buffered is written. */
  end(err: unknown): Promise<void>;
  logEnd(outcome: ReturnType<typeof outcomeOf>, changes: number, usage: TurnUsage | undefined): void;
}

export async function startTaskTranscript(
  deps: { db: Db; logger: Logger },
  task: Task,
  agent: string,
  cwd: string,
): Promise<TaskTranscript> {
  const startedAt = Date.now();
  const fields = { taskId: task.id, agent, path: task.executionPath ?? 'acp' };
  const recorder = await TranscriptRecorder.start({ db: deps.db, taskId: task.id, cwd, logger: deps.logger });
  await markTaskStarted(deps.db, task.id, `starting ${agent}`);
  deps.logger.info('task started', { ...fields, attempt: task.attempts });
  return {
    recorder,
    async end(err) {
      if (err !== undefined) {
        const e = toPublicError(err);
        const event = errorEvent(`${e.code}: ${e.message}`);
        if (event) recorder.onEvent(event);
      }
      await recorder.close();
    },
    logEnd(outcome, changes, usage) {
      deps.logger.info('task ended', {
        ...fields,
        state: outcome.state,
        durationMs: Date.now() - startedAt,
        changes,
        inputTokens: usage?.inputTokens ?? 0,
        outputTokens: usage?.outputTokens ?? 0,
        cost: usage?.cost ?? 0,
        ...(usage?.currency ? { currency: usage.currency } : {}),
        errorCode: outcome.errorCode,
      });
    },
  };
}
