/** Transcript use cases: a page of a task's events, and the whole of it as markdown. */

import type { Task } from '../db/rows.js';
import { listTaskEvents, type TaskEventRow } from '../db/task-events.js';
import * as tasks from '../db/tasks.js';
import { BoocoderError } from '../errors.js';
import { gapsOf, type TranscriptGap, transcriptMarkdown } from '../transcripts/transcript-markdown.js';
import type { Deps } from './deps.js';

export interface TranscriptPage {
  task: Task;
  events: TaskEventRow[];
  gaps: TranscriptGap[];
  lastSeq: number;
  /** The `after` of the next page, or null when this page reached the last event stored. */
  nextAfter: number | null;
}

/** Enough for any transcript within its bound (see transcript-recorder.ts) in one resource read. */
const MARKDOWN_MAX_EVENTS = 2000;

async function taskOf(deps: Deps, id: string): Promise<Task> {
  const task = await tasks.findTask(deps.db, id);
  if (!task) throw new BoocoderError('E_TASK_NOT_FOUND', `no task has id ${id}`);
  return task;
}

export async function getTranscript(
  deps: Deps,
  taskId: string,
  afterSeq: number,
  limit: number,
): Promise<TranscriptPage> {
  const task = await taskOf(deps, taskId);
  const { events, lastSeq } = await listTaskEvents(deps.db, taskId, afterSeq, limit);
  const last = events.at(-1)?.seq;
  return {
    task,
    events,
    gaps: gapsOf(events, afterSeq),
    lastSeq,
    nextAfter: last !== undefined && last < lastSeq ? last : null,
  };
}

export async function readTranscriptMarkdown(deps: Deps, taskId: string): Promise<string> {
  const page = await getTranscript(deps, taskId, 0, MARKDOWN_MAX_EVENTS);
  return transcriptMarkdown(page.task, page.events, page.nextAfter !== null);
}
