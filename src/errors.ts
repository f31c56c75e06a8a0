/**
 * The one error type of boocoder. `code` is stable API: clients and tests match on it.
 * `message` is shown to the client's model, so it says what happened and what to do, and never
 * carries secrets, connection strings or host paths outside the project.
 */
export const ERROR_CODES = [
  'E_INVALID_INPUT',
  'E_NOT_FOUND',
  'E_PROJECT_NOT_FOUND',
  'E_PROJECT_MISSING',
  'E_NOT_A_GIT_REPO',
  'E_PROJECT_NO_COMMITS',
  'E_TASK_NOT_FOUND',
  'E_TASK_NOT_CANCELLABLE',
  'E_TOO_MANY_TASKS',
  'E_SESSION_NOT_FOUND',
  'E_CHAT_NOT_FOUND',
  'E_CHANGE_NOT_FOUND',
  'E_CHANGE_NOT_PENDING',
  'E_CHANGE_NOT_APPLIED',
  'E_BASE_MOVED',
  'E_PATH_ESCAPE',
  'E_UNSAFE_CHANGE',
  'E_DIFF_TOO_LARGE',
  'E_TOO_MANY_FILES',
  'E_AGENT_NOT_FOUND',
  'E_AGENT_NEEDS_AUTH',
  'E_AGENT_FAILED',
  'E_AGENT_TIMEOUT',
  'E_AGENT_WROTE_OUTSIDE_WORKTREE',
  'E_MODEL_UNREACHABLE',
  'E_MODEL_AUTH',
  'E_MODEL_BAD_RESPONSE',
  /** A task's lease expired (its dispatcher died or hung) on its last attempt: written by the lease sweep. */
  'E_LEASE_EXPIRED',
  'E_CANCELLED',
  'E_BUDGET_EXCEEDED',
  'E_MERGE_CONFLICT',
  'E_GIT_FAILED',
  'E_WORKTREE_FAILED',
  'E_SETUP_FAILED',
  'E_UNTRUSTED_COMMAND',
  'E_ARENA_NOT_FOUND',
  'E_ARENA_DECIDED',
  'E_ARENA_NOT_FINISHED',
  'E_DATABASE',
  'E_DATABASE_NEWER',
  'E_MIGRATION_CHECKSUM',
  'E_DATA_DIR_LOCKED',
  'E_CONFIG',
  'E_UNAUTHORIZED',
  'E_FORBIDDEN',
  'E_DAEMON_UNAVAILABLE',
  'E_ALREADY_RUNNING',
  'E_NOT_RUNNING',
  'E_USAGE',
  'E_PROJECT_ON_OTHER_MACHINE',
  'E_EMBEDDED_DATABASE',
  'E_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class BoocoderError extends Error {
  override readonly name = 'BoocoderError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBoocoderError(err: unknown, code?: ErrorCode): err is BoocoderError {
  return err instanceof BoocoderError && (code === undefined || err.code === code);
}

/**
 * Turns any thrown value into something safe to show a client. Unknown errors (driver errors,
 * system errors) can carry connection strings or host paths, so their text never leaves the process.
 */
export function toPublicError(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof BoocoderError) return { code: err.code, message: err.message };
  return { code: 'E_INTERNAL', message: 'internal error; the server log has the details' };
}
