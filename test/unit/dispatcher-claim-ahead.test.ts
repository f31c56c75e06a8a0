/** ClaimedAheadTasks: when a dispatcher may claim ahead, and how long a held task may wait. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../src/db/rows.js';
import { ClaimedAheadTasks, SHORT_RUN_MS } from '../../src/dispatcher/claim-ahead.js';

const task = (id: string) => ({ id }) as Task;

function withShortRuns(expired: (tasks: Task[]) => void = () => {}, maxWaitMs = 100): ClaimedAheadTasks {
  const ahead = new ClaimedAheadTasks(3, { maxWaitMs }, expired);
  for (let i = 0; i < 8; i++) ahead.recordRun(1);
  return ahead;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ClaimedAheadTasks', () => {
  it('claims ahead only after a streak of short runs, and not while a run already lasts long', () => {
    const ahead = new ClaimedAheadTasks(3, { maxWaitMs: 100 }, () => {});
    for (let i = 0; i < 7; i++) ahead.recordRun(1);
    expect(ahead.limit(0)).toBe(0);
    ahead.recordRun(1);
    expect(ahead.limit(0)).toBe(3);
    expect(ahead.limit(SHORT_RUN_MS)).toBe(0);
  });

  it('stops claiming ahead after a few long runs', () => {
    const ahead = withShortRuns();
    let longRuns = 0;
    while (ahead.limit(0) > 0) {
      ahead.recordRun(60_000);
      longRuns++;
    }
    expect(longRuns).toBeLessThanOrEqual(2);
  });

  it('hands out held tasks oldest first, with the cancels that arrived while they were held', () => {
    const ahead = withShortRuns();
    ahead.hold(task('a'), 0);
    ahead.hold(task('b'), 0);
    expect(ahead.markCancelled('b')).toBe(true);
    expect(ahead.markCancelled('zzz')).toBe(false);
    expect(ahead.ids()).toEqual(['a', 'b']);
    expect(ahead.next()).toMatchObject({ task: { id: 'a' }, cancelled: false });
    expect(ahead.next()).toMatchObject({ task: { id: 'b' }, cancelled: true });
    expect(ahead.next()).toBeUndefined();
    ahead.close();
  });

  it('drops tasks whose lease was lost', () => {
    const ahead = withShortRuns();
    for (const id of ['a', 'b', 'c']) ahead.hold(task(id), 0);
    ahead.drop(new Set(['b']));
    expect(ahead.ids()).toEqual(['a', 'c']);
    expect(ahead.close().map((t) => t.id)).toEqual(['a', 'c']);
    expect(ahead.size).toBe(0);
  });

  it('gives back a task held for maxWaitMs, and claims ahead again only after another streak', () => {
    vi.useFakeTimers();
    const expired: string[][] = [];
    const ahead = withShortRuns((tasks) => expired.push(tasks.map((t) => t.id)), 100);
    ahead.hold(task('a'), Date.now());
    vi.advanceTimersByTime(50);
    ahead.hold(task('b'), Date.now());
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([['a']]);
    expect(ahead.ids()).toEqual(['b']);
    expect(ahead.limit(0)).toBe(0);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual([['a'], ['b']]);
    for (let i = 0; i < 8; i++) ahead.recordRun(1);
    expect(ahead.limit(0)).toBe(3);
  });

  it('sets no timer once closed', () => {
    vi.useFakeTimers();
    const expired: Task[][] = [];
    const ahead = withShortRuns((tasks) => expired.push(tasks));
    ahead.hold(task('a'), Date.now());
    expect(ahead.close().map((t) => t.id)).toEqual(['a']);
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
