/**
 * The `ask` permission policy. A request the default policy allows (see acp-client-policy.ts) is
 * parked for a human instead of being allowed: the request is stored, the task becomes `blocked`
 * (it shows in human_inbox) and the agent's ACP request stays open while its dispatcher keeps the
 * lease. list_permission_requests shows it; answer_permission records a choice and NOTIFYs; the
 * waiting dispatcher (LISTEN, with the fallback poll) hands the choice to the agent, which resumes.
 * Requests the default policy refuses are refused under `ask` too: a human is never asked to let an
 * agent out of its worktree.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { PermissionAsker } from '../agents/acp-client-policy.js';
import * as requests from '../db/permission-requests.js';
import type { Task } from '../db/rows.js';
import { BoocoderError } from '../errors.js';
import { decodeCursor, encodeCursor } from './changes.js';
import type { Deps } from './deps.js';
import { TASKS_DONE_CHANNEL } from './task-events.js';
import { TASKS_CANCEL_CHANNEL } from './tasks.js';

export const PERMISSION_POLICIES = ['auto', 'ask'] as const;
export type PermissionPolicy = (typeof PERMISSION_POLICIES)[number];
/** NOTIFYed with the request id when a task blocks on a new request. */
export const PERMISSION_REQUESTS_CHANNEL = 'permission_requests';
/** NOTIFYed with the request id when a request is answered: wakes the dispatcher waiting for it. */
export const PERMISSION_ANSWERS_CHANNEL = 'permission_answers';

/** Agent-supplied fields are cut to these before they are stored and shown to a client's model. */
const MAX_OPTIONS = 16;
const MAX_ID_CHARS = 200;
const MAX_TITLE_CHARS = 1000;
const CANCELLED: acp.RequestPermissionResponse = { outcome: { outcome: 'cancelled' } };

export interface PermissionGateContext {
  task: Task;
  agent: string;
  owner: string;
  /** The run's signal: cancel, lease loss, shutdown. */
  signal: AbortSignal;
  /** Stops the run as cancelled (the gate saw the task's cancellation before the dispatcher did). */
  cancelRun: () => void;
}

/** The request as stored: bounded, with only the options a human can pick by id. */
function toNewRequest(
  g: PermissionGateContext,
  r: acp.RequestPermissionRequest,
): requests.NewPermissionRequest {
  const cut = (s: string | null | undefined, max: number) => (s ? s.slice(0, max) : null);
  const options = r.options
    // An id cut short would be one the agent never offered: such options are left out, not cut.
    .filter((o) => o.optionId.length <= MAX_ID_CHARS)
    .slice(0, MAX_OPTIONS)
    .map((o) => ({ optionId: o.optionId, name: o.name.slice(0, MAX_ID_CHARS), kind: o.kind }));
  return {
    taskId: g.task.id,
    agent: g.agent,
    toolCallId: cut(r.toolCall.toolCallId, MAX_ID_CHARS),
    title: cut(r.toolCall.title, MAX_TITLE_CHARS),
    kind: r.toolCall.kind ?? null,
    // Bounded by the default policy, which refused the request otherwise.
    locations: (r.toolCall.locations ?? []).map((l) => ({
      path: l.path,
      ...(typeof l.line === 'number' ? { line: l.line } : {}),
    })),
    options,
  };
}

/** Stores the request and blocks the task; null when the task is no longer this run's to block. */
async function parkRequest(
  deps: Deps,
  g: PermissionGateContext,
  r: acp.RequestPermissionRequest,
): Promise<requests.PermissionRequest | null> {
  const row = toNewRequest(g, r);
  if (row.options.length === 0) return null;
  return deps.db.transaction(async (tx) => {
    const parked = await requests.insertRequestBlockingTask(tx, g.owner, row);
    if (parked) {
      // tasks_done wakes get_task waiters: `blocked` is a state a waiting client must see.
      await tx.query('SELECT pg_notify($1, $2), pg_notify($3, $4)', [
        PERMISSION_REQUESTS_CHANNEL,
        parked.id,
        TASKS_DONE_CHANNEL,
        g.task.id,
      ]);
    }
    return parked;
  });
}

type WaitEnd = { optionId: string } | { unanswered: 'cancelled' | 'expired' };

/** One look at the request: its answer, the reason to stop waiting, or undefined to keep waiting. */
async function checkRequest(deps: Deps, id: string, g: PermissionGateContext): Promise<WaitEnd | undefined> {
  const found = await requests.findRequestWithTask(deps.db, id);
  if (!found) return { unanswered: 'expired' };
  const { request, taskState, cancelRequested } = found;
  if (cancelRequested || taskState === 'cancelled') {
    g.cancelRun();
    return { unanswered: 'cancelled' };
  }
  if (request.state === 'answered' && request.chosenOptionId !== null)
    return { optionId: request.chosenOptionId };
  if (request.state !== 'pending' || taskState !== 'blocked') return { unanswered: 'expired' };
  return undefined;
}

/** Waits for an answer: woken by NOTIFY, re-reading every pollMs in case one was lost. */
async function waitForAnswer(
  deps: Deps,
  request: requests.PermissionRequest,
  g: PermissionGateContext,
  signal: AbortSignal,
): Promise<WaitEnd> {
  let wake = new AbortController();
  const onNotify = (payload: string) => {
    // '' is the listener's reconnect: a notification may have been missed.
    if (payload === request.id || payload === request.taskId || payload === '') wake.abort();
  };
  const unlisten: (() => Promise<void>)[] = [];
  try {
    for (const channel of [PERMISSION_ANSWERS_CHANNEL, TASKS_CANCEL_CHANNEL])
      unlisten.push(await deps.db.listen(channel, onNotify));
  } catch (err) {
    deps.logger.warn('cannot listen for permission answers; polling', { err });
  }
  try {
    for (;;) {
      if (signal.aborted) return { unanswered: g.signal.reason === 'cancel' ? 'cancelled' : 'expired' };
      const end = await checkRequest(deps, request.id, g).catch((err: unknown) => {
        deps.logger.warn('reading a permission request failed', { requestId: request.id, err });
        return undefined;
      });
      if (end) return end;
      await delay(deps.config.pollMs, undefined, { signal: AbortSignal.any([signal, wake.signal]) }).catch(
        () => {},
      );
      if (wake.signal.aborted) wake = new AbortController();
    }
  } finally {
    await Promise.allSettled(unlisten.map((u) => u()));
  }
}

/** Closes a request nobody answered and gives the task back its `running` state for the run's end. */
async function closeUnanswered(
  deps: Deps,
  request: requests.PermissionRequest,
  owner: string,
  state: 'cancelled' | 'expired',
): Promise<void> {
  await deps.db.transaction(async (tx) => {
    await requests.closeRequest(tx, request.id, state);
    await requests.resumeTaskIfUnblocked(tx, request.taskId, owner);
  });
}

/**
 * The `ask` policy's asker for one task run. The agent gets the human's choice, or cancelled when
 * the run stops first (cancel, lease loss, shutdown, the turn's timeout) or the task cannot block.
 */
function createPermissionGate(deps: Deps, g: PermissionGateContext): PermissionAsker {
  return async (request, turnSignal) => {
    const parked = await parkRequest(deps, g, request);
    if (!parked) return CANCELLED;
    const log = deps.logger.child({ taskId: g.task.id, requestId: parked.id });
    log.info('task blocked on a permission request', { kind: parked.kind });
    const end = await waitForAnswer(deps, parked, g, AbortSignal.any([g.signal, turnSignal]));
    if ('optionId' in end) {
      log.info('permission answered', { optionId: end.optionId });
      return { outcome: { outcome: 'selected', optionId: end.optionId } };
    }
    log.info('permission request ended unanswered', { state: end.unanswered });
    await closeUnanswered(deps, parked, g.owner, end.unanswered);
    return CANCELLED;
  };
}

export interface GatedRun {
  /** The run's signal: the dispatcher's, which the gate can also abort. */
  signal: AbortSignal;
  /** Answers the run's permission requests; undefined under `auto`. */
  asker?: PermissionAsker;
}

/**
 * Sets up one task run under `policy`. Under `ask` the gate may see the task's cancellation before
 * the dispatcher does, so the run's signal joins the dispatcher's with one the gate aborts as
 * 'cancel' (the dispatcher's reason for a client's cancel).
 */
export function gateTaskRun(
  deps: Deps,
  policy: PermissionPolicy,
  run: Omit<PermissionGateContext, 'cancelRun'>,
): GatedRun {
  if (policy === 'auto') return { signal: run.signal };
  const cancelled = new AbortController();
  const signal = AbortSignal.any([run.signal, cancelled.signal]);
  const cancelRun = () => cancelled.abort('cancel');
  return { signal, asker: createPermissionGate(deps, { ...run, signal, cancelRun }) };
}

export interface PermissionRequestPage {
  requests: requests.PermissionRequest[];
  nextCursor: string | null;
}

export async function listPermissionRequests(
  deps: Deps,
  f: Omit<requests.PermissionRequestFilter, 'afterSeq'> & { cursor?: string },
): Promise<PermissionRequestPage> {
  const rows = await requests.listPermissionRequests(deps.db, {
    ...f,
    afterSeq: decodeCursor(f.cursor),
    limit: f.limit + 1,
  });
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return { requests: page, nextCursor: rows.length > f.limit && last ? encodeCursor(last.seq) : null };
}

/** Why a request can no longer be answered, for the client's model. */
function notAnswerable(found: requests.RequestWithTask): BoocoderError | undefined {
  const { request, taskState } = found;
  if (request.state === 'answered') {
    return new BoocoderError(
      'E_INVALID_INPUT',
      `permission request ${request.id} was already answered (option ${request.chosenOptionId}); nothing to do`,
    );
  }
  if (request.state !== 'pending') {
    return new BoocoderError(
      'E_INVALID_INPUT',
      `permission request ${request.id} is ${request.state}: its task run ended without an answer`,
    );
  }
  if (taskState !== 'blocked') {
    return new BoocoderError(
      'E_INVALID_INPUT',
      `the task of permission request ${request.id} is ${taskState}, so no agent waits for this answer`,
    );
  }
  return undefined;
}

/**
 * Records a human's choice: only an option the agent offered, and only once (the task row is locked,
 * then the request is compare-and-set from pending). The task runs again when no other request of
 * it is pending; the NOTIFY wakes the dispatcher that holds the agent's request open.
 */
export async function answerPermission(
  deps: Deps,
  requestId: string,
  optionId: string,
): Promise<{ request: requests.PermissionRequest; taskResumed: boolean }> {
  return deps.db.transaction(async (tx) => {
    const found = await requests.findRequestWithTask(tx, requestId, { lockTask: true });
    if (!found) throw new BoocoderError('E_NOT_FOUND', `no permission request has id ${requestId}`);
    const refusal = notAnswerable(found);
    if (refusal) throw refusal;
    const offered = found.request.options.map((o) => o.optionId);
    if (!offered.includes(optionId)) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `option_id must be one the agent offered: ${offered.map((id) => JSON.stringify(id)).join(', ')}`,
      );
    }
    const request = await requests.markRequestAnswered(tx, requestId, optionId);
    if (!request)
      throw new BoocoderError('E_INVALID_INPUT', `permission request ${requestId} was just answered`);
    const taskResumed = await requests.resumeTaskIfUnblocked(tx, request.taskId);
    await tx.query('SELECT pg_notify($1, $2)', [PERMISSION_ANSWERS_CHANNEL, requestId]);
    return { request, taskResumed };
  });
}
