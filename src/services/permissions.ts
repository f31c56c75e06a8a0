/**
 * The use cases of the permission tools: list the requests a human may answer, and record an
 * answer. The run-time gate that parks a request and waits for its answer is src/permissions/gate.ts.
 */
import * as requests from '../db/permission-requests.js';
import { BoocoderError } from '../errors.js';
import { decodeCursor, encodeCursor } from './changes.js';
import type { Deps } from './deps.js';

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
    return { request, taskResumed };
  });
}
