/**
 * The inbox use case: what needs a human or the calling agent, optionally waiting (bounded) for
 * something new to arrive. Clients that ignore resource updates (Claude Code, opencode) long-poll it.
 */
import { type InboxRow, listInboxTasks } from '../db/inbox.js';
import type { Deps } from './deps.js';

export type InboxEntry = InboxRow & { reason: 'blocked' | 'failed' | 'unreviewed' };

export interface InboxQuery {
  projectId?: string | undefined;
  limit: number;
  /** Wait (up to this many seconds) until an entry newer than `since` exists. */
  waitS?: number | undefined;
  /** An entry counts as new when its task changed after this; default: when the call began. */
  since?: Date | undefined;
  signal?: AbortSignal | undefined;
}

/** Re-read at least this often while waiting: activity notifications are only hints. */
const WAIT_POLL_MS = 1000;

function reasonOf(row: InboxRow): InboxEntry['reason'] {
  if (row.task.state === 'blocked') return 'blocked';
  if (row.task.state === 'failed') return 'failed';
  return 'unreviewed';
}

export async function listInbox(
  deps: Deps,
  q: InboxQuery,
): Promise<{ entries: InboxEntry[]; waitedOut: boolean }> {
  const started = Date.now();
  const since = q.since ?? new Date(started);
  const deadline = started + (q.waitS ?? 0) * 1000;
  for (;;) {
    const rows = await listInboxTasks(deps.db, { projectId: q.projectId, limit: q.limit });
    const entries = rows.map((r) => ({ ...r, reason: reasonOf(r) }));
    const fresh = entries.some((e) => e.task.updatedAt.getTime() > since.getTime());
    const now = Date.now();
    if (!q.waitS || fresh || now >= deadline || q.signal?.aborted)
      return { entries, waitedOut: Boolean(q.waitS) && !fresh };
    await deps.events.waitForActivity(Math.min(WAIT_POLL_MS, deadline - now), q.signal);
  }
}
