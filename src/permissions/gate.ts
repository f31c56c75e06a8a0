/**
 * The `ask` permission policy at run time. A request the default policy allows (policy.ts) is
 * parked for a human instead of being allowed: the request is stored, the task becomes `blocked`
 * (it shows in human_inbox) and the agent's ACP request stays open while its dispatcher keeps the
 * lease. list_permission_requests shows it; answer_permission (services/permissions.ts) records a
 * choice, which NOTIFYs; the
 * waiting dispatcher (LISTEN, with the fallback poll) hands the choice to the agent, which resumes.
 * Requests the default policy refuses are refused under `ask` too: a human is never asked to let an
 * agent out of its worktree.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { Config } from '../config.js';
import { PERMISSION_ANSWERS_CHANNEL, TASKS_CANCEL_CHANNEL } from '../db/channels.js';
import type { Db } from '../db/db.js';
import * as requests from '../db/permission-requests.js';
import type { Task } from '../db/rows.js';
import type { Logger } from '../log.js';
import type { PermissionPolicy } from './policy.js';
import type { PermissionAsker } from './responder.js';

/** What the gate needs of the process: it sits below the services, beside the dispatcher. */
export interface GateDeps {
  db: Db;
  logger: Logger;
  config: Pick<Config, 'pollMs'>;
}

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
  deps: GateDeps,
  g: PermissionGateContext,
  r: acp.RequestPermissionRequest,
): Promise<requests.PermissionRequest | null> {
  const row = toNewRequest(g, r);
  if (row.options.length === 0) return null;
  return deps.db.transaction((tx) => requests.insertRequestBlockingTask(tx, g.owner, row));
}

type WaitEnd = { optionId: string } | { unanswered: 'cancelled' | 'expired' };

/** One look at the request: its answer, the reason to stop waiting, or undefined to keep waiting. */
async function checkRequest(
  deps: GateDeps,
  id: string,
  g: PermissionGateContext,
): Promise<WaitEnd | undefined> {
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
  deps: GateDeps,
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
  deps: GateDeps,
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
function createPermissionGate(deps: GateDeps, g: PermissionGateContext): PermissionAsker {
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
  deps: GateDeps,
  policy: PermissionPolicy,
  run: Omit<PermissionGateContext, 'cancelRun'>,
): GatedRun {
  if (policy === 'auto') return { signal: run.signal };
  const cancelled = new AbortController();
  const signal = AbortSignal.any([run.signal, cancelled.signal]);
  const cancelRun = () => cancelled.abort('cancel');
  return { signal, asker: createPermissionGate(deps, { ...run, signal, cancelRun }) };
}
