import { describe, expect, it } from 'vitest';
import { countDiffLines, type RankedContender, rankContenders } from '../../src/services/arena-ranking.js';

const c = (taskId: string, o: Partial<RankedContender> = {}): RankedContender => ({
  taskId,
  state: 'completed',
  check: 'passed',
  filesChanged: 1,
  linesChanged: 10,
  cost: 1,
  seq: 1,
  ...o,
});

describe('rankContenders', () => {
  it('puts a passed check before a smaller diff, and a smaller diff before a lower cost', () => {
    expect(
      rankContenders([
        c('failed-small', { check: 'failed', linesChanged: 1, cost: 0, seq: 1 }),
        c('passed-big-cheap', { linesChanged: 50, cost: 0.1, seq: 2 }),
        c('passed-small-dear', { linesChanged: 5, cost: 9, seq: 3 }),
        c('passed-small-cheap', { linesChanged: 5, cost: 1, seq: 4 }),
      ]),
    ).toEqual(['passed-small-cheap', 'passed-small-dear', 'passed-big-cheap', 'failed-small']);
  });

  it('ranks contenders that did not complete with changes last, however their check went', () => {
    expect(
      rankContenders([
        c('no-changes', { filesChanged: 0, linesChanged: 0, seq: 1 }),
        c('crashed', { state: 'failed', check: null, seq: 2 }),
        c('untrusted-check', { check: 'untrusted', seq: 3 }),
        c('timed-out-check', { check: 'timeout', linesChanged: 2, seq: 4 }),
      ]),
    ).toEqual(['timed-out-check', 'untrusted-check', 'no-changes', 'crashed']);
  });

  it('breaks full ties by queue order', () => {
    expect(rankContenders([c('b', { seq: 2 }), c('a', { seq: 1 })])).toEqual(['a', 'b']);
  });
});

describe('countDiffLines', () => {
  it('counts hunk lines only, not the file headers', () => {
    const diff = [
      'diff --git a/x b/x',
      '--- a/x',
      '+++ b/x',
      '@@ -1,2 +1,2 @@',
      ' same',
      '-old',
      '+new',
      '++plus-plus content',
      '--- dashed content',
    ].join('\n');
    expect(countDiffLines(diff)).toEqual({ added: 2, removed: 2 });
    expect(countDiffLines('diff --git a/bin b/bin\nBinary files differ\n')).toEqual({ added: 0, removed: 0 });
  });
});
