/**
 * The NOTIFY channels. A notification is only a wake-up hint: whoever listens re-reads the rows
 * (the dispatcher with FOR UPDATE SKIP LOCKED) and polls slowly in case one was lost. Each is sent
 * by the db function (or trigger) that changes the rows it announces, in the same transaction.
 */

/** A pending task was inserted (the tasks insert trigger, sql/0001 and 0006); payload ''. */
export const TASKS_NEW_CHANNEL = 'tasks_new';
/** A task reached a final state, or `blocked` (a waiting client must see it); payload: its id. */
export const TASKS_DONE_CHANNEL = 'tasks_done';
/** A running or blocked task's cancellation was requested: its dispatcher stops it; payload: its id. */
export const TASKS_CANCEL_CHANNEL = 'tasks_cancel';
/** A task blocked on a new permission request; payload: the request id. */
export const PERMISSION_REQUESTS_CHANNEL = 'permission_requests';
/** A permission request was answered: wakes the dispatcher holding the agent's request; payload: its id. */
export const PERMISSION_ANSWERS_CHANNEL = 'permission_answers';
