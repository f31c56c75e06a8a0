/** Row shapes past src/db/: camelCase, Dates, numbers. */
export const TASK_STATES = ['pending', 'running', 'completed', 'failed', 'blocked', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const CHANGE_STATUSES = ['pending', 'applied', 'rejected', 'reverted'] as const;
export type ChangeStatus = (typeof CHANGE_STATUSES)[number];
export type ChangeOperation = 'create' | 'edit' | 'delete';

export interface Task {
  id: string;
  projectId: string;
  parentTaskId: string | null;
  state: TaskState;
  input: string;
  outputSummary: string | null;
  agent: string | null;
  model: string | null;
  modeId: string | null;
  thinkingOptionId: string | null;
  featureValues: Record<string, string | boolean> | null;
  executionPath: string | null;
  worktreePath: string | null;
  costTokens: number | null;
  startedAt: Date | null;
  endedAt: Date | null;
  createdAt: Date;
  sessionId: string | null;
  chatId: string | null;
  arenaId: string | null;
  seq: number;
  attempts: number;
  maxAttempts: number;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  lastError: string | null;
  errorCode: string | null;
  cancelRequestedAt: Date | null;
  updatedAt: Date;
  /** What the task's agent is doing now, from its transcript ("running npm test"). */
  nowDoing: string | null;
  /** new_task's request_id: a retry with the same id (same project, within the window) replays. */
  requestId: string | null;
  maxCost: number | null;
  maxTokens: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  cost: number | null;
  costCurrency: string;
}

export interface PendingChange {
  id: string;
  sessionId: string;
  taskId: string | null;
  filePath: string;
  operation: ChangeOperation;
  diff: string;
  status: ChangeStatus;
  createdAt: Date;
  agent: string | null;
  baseOid: string | null;
  resultOid: string | null;
  baseMode: string | null;
  resultMode: string | null;
  diffBytes: number;
  worktreeId: string | null;
  seq: number;
  appliedAt: Date | null;
  revertedAt: Date | null;
  reviewComment: string | null;
  followUpTaskId: string | null;
  supersedesId: string | null;
  /** What the file held just before the apply (oid null: absent); set by apply. */
  priorOid: string | null;
  priorMode: string | null;
  /** What apply wrote when it merged (null: the captured result). */
  mergedOid: string | null;
}

type Raw = Record<string, unknown>;

/**
 * Column names seen so far, converted once: the same few dozen names come back on every row, and
 * converting each name of each row again was a large part of the dispatcher's CPU per task.
 * Bounded: only the schema's own column names and aliases ever reach it.
 */
const camelNames = new Map<string, string>();

function camel(name: string): string {
  let converted = camelNames.get(name);
  if (converted === undefined) {
    converted = name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    camelNames.set(name, converted);
  }
  return converted;
}

/** Maps a snake_case row to camelCase; int8 columns arrive as numbers from both adapters. */
export function toCamel<T>(row: Raw): T {
  const out: Raw = {};
  for (const k in row) out[camel(k)] = row[k];
  return out as T;
}
