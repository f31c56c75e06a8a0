/**
 * The soak's client: keeps one task in flight per chat, inserting a chat's next task as soon as its
 * previous one reaches a final state, until `total` tasks have been inserted and finished. With as
 * many chats as dispatcher slots, every inserted task finds a free slot, so created_at → started_at
 * is the dispatchers' reaction time under load rather than time spent waiting in a queue.
 *
 * Tasks are inserted with the same row `new_task` writes (agent, attempts budget, execution path),
 * straight into the table: the soak measures the dispatchers, not the MCP layer.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { TASKS_DONE_CHANNEL } from '../src/db/channels.js';
import type { Db } from '../src/db/db.js';

export interface SoakChat {
  projectId: string;
  sessionId: string;
  chatId: string;
}

export interface FeedPlan {
  total: number;
  chats: readonly SoakChat[];
  agent: string;
  /** The fixture agent's script for the task with this id, the n-th inserted (0-based). */
  script(taskId: string, n: number): string;
  /** Called once per finished task with the number finished so far. */
  onFinished?(finished: number): void;
  /** Called on every re-check; throwing stops the feed (a dispatcher died, say). */
  check?(): void;
  /** Stop inserting after this long; what is still in flight then is reported, not awaited. */
  deadlineMs: number;
}

export interface FeedResult {
  /** Every task inserted, in insertion order. */
  taskIds: string[];
  /** Tasks seen in a final state. */
  finished: number;
  /** Tasks still pending or running when the deadline passed (empty when all finished). */
  unfinished: string[];
}

/** A missed notification costs at most this long: the in-flight tasks are re-read on this timer. */
const RECHECK_MS = 1000;

/** Creates `count` sessions of one chat each in the project (one running task per session). */
export async function createSoakChats(db: Db, projectId: string, count: number): Promise<SoakChat[]> {
  const { rows } = await db.query<{ session_id: string; chat_id: string }>(
    `WITH s AS (INSERT INTO sessions (project_id) SELECT $1 FROM generate_series(1, $2) RETURNING id)
     INSERT INTO chats (session_id) SELECT id FROM s RETURNING session_id, id AS chat_id`,
    [projectId, count],
  );
  return rows.map((r) => ({ projectId, sessionId: r.session_id, chatId: r.chat_id }));
}

export async function feedTasks(db: Db, plan: FeedPlan): Promise<FeedResult> {
  const taskIds: string[] = [];
  const inFlight = new Map<string, SoakChat>();
  let finished = 0;

  const insertNext = async (chat: SoakChat): Promise<void> => {
    if (taskIds.length >= plan.total) return;
    const id = randomUUID();
    const n = taskIds.length;
    taskIds.push(id);
    inFlight.set(id, chat);
    await db.query(
      `INSERT INTO tasks (id, project_id, session_id, chat_id, input, agent, max_attempts, execution_path)
       VALUES ($1, $2, $3, $4, $5, $6, 3, 'acp')`,
      [id, chat.projectId, chat.sessionId, chat.chatId, plan.script(id, n), plan.agent],
    );
  };

  let signalAllDone: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    signalAllDone = resolve;
  });
  let failure: unknown;
  // Checks run one at a time, so a notification and the timer never hand a chat two next tasks.
  let checking: Promise<void> = Promise.resolve();
  const checkInFlight = (): Promise<void> => {
    checking = checking.then(async () => {
      if (inFlight.size === 0 || failure) return;
      try {
        const { rows } = await db.query<{ id: string }>(
          `SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND state NOT IN ('pending', 'running')`,
          [[...inFlight.keys()]],
        );
        const next: SoakChat[] = [];
        for (const { id } of rows) {
          const chat = inFlight.get(id);
          if (!chat) continue;
          inFlight.delete(id);
          finished++;
          plan.onFinished?.(finished);
          next.push(chat);
        }
        await Promise.all(next.map(insertNext));
      } catch (err) {
        // Kept for the loop below to throw: a notification handler has nobody to throw to.
        failure ??= err;
      }
      if (finished >= plan.total || failure) signalAllDone();
    });
    return checking;
  };

  const unlisten = await db.listen(TASKS_DONE_CHANNEL, () => void checkInFlight());
  const deadline = Date.now() + plan.deadlineMs;
  try {
    await Promise.all(plan.chats.map(insertNext));
    while (finished < plan.total && !failure && Date.now() < deadline) {
      const tick = new AbortController();
      await Promise.race([delay(RECHECK_MS, undefined, { signal: tick.signal }).catch(() => {}), allDone]);
      tick.abort();
      plan.check?.();
      await checkInFlight();
    }
    await checking;
  } finally {
    await unlisten();
  }
  if (failure) throw failure;
  return { taskIds, finished, unfinished: [...inFlight.keys()] };
}
