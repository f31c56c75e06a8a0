/**
 * How get_arena ranks contenders (pure, documented in docs/arenas.md): those that completed with
 * at least one change first (a contender that changed nothing did not do the task, however clean
 * its check), then check passed before not passed, then the smaller diff (lines added + removed),
 * then the lower cost, then queue order.
 */
import type { CheckOutcome } from '../db/task-checks.js';

export interface RankedContender {
  taskId: string;
  state: string;
  check: CheckOutcome | null;
  filesChanged: number;
  linesChanged: number;
  cost: number;
  seq: number;
}

function key(c: RankedContender): number[] {
  return [
    c.state === 'completed' && c.filesChanged > 0 ? 0 : 1,
    c.check === 'passed' ? 0 : 1,
    c.linesChanged,
    c.cost,
    c.seq,
  ];
}

/** The task ids, best first. */
export function rankContenders(contenders: readonly RankedContender[]): string[] {
  const keyed = contenders.map((c) => ({ id: c.taskId, k: key(c) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < a.k.length; i++) {
      const d = (a.k[i] as number) - (b.k[i] as number);
      if (d !== 0) return d;
    }
    return 0;
  });
  return keyed.map((c) => c.id);
}

/** Lines added and removed by a unified diff (hunk lines only: file headers are not counted). */
export function countDiffLines(diff: string): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  let inHunk = false;
  for (const line of diff.split('\n')) {
    if (line.startsWith('@@')) inHunk = true;
    else if (line.startsWith('diff --git ')) inHunk = false;
    else if (inHunk && line.startsWith('+')) added++;
    else if (inHunk && line.startsWith('-')) removed++;
  }
  return { added, removed };
}
