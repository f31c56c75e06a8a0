/**
 * A project's setup or check command: run with /bin/sh in its own process group, its exit code and
 * the tail of its output recorded; on timeout (or when it exits leaving something in the
 * background) the whole group is stopped, so nothing it started outlives it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { runProjectCommand } from '../../src/dispatcher/project-command.js';
import { tempRepos } from '../helpers/worktrees-temp-repo.js';

const repos = tempRepos();
afterAll(() => repos.cleanup());

const run = async (command: string, timeoutMs = 60_000) =>
  runProjectCommand({ command, cwd: await repos.dir(), env: { PATH: '/usr/bin:/bin' }, timeoutMs });

describe('runProjectCommand', () => {
  it('records the exit code and the tail of the output, capped', async () => {
    const r = await run(
      'i=0; while [ $i -lt 5000 ]; do echo "line $i"; i=$((i+1)); done; echo oops >&2; exit 7',
    );
    expect(r).toMatchObject({ outcome: 'failed', exitCode: 7 });
    const lines = r.outputTail.split('\n');
    expect(lines.length).toBeLessThanOrEqual(60);
    expect(lines.at(-1)).toBe('oops');
    expect(lines.at(-2)).toBe('line 4999');
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('stops the whole process group on timeout', async () => {
    const r = await run('echo "pgid $$"; sleep 300 & sleep 300', 1000);
    expect(r.outcome).toBe('timeout');
    expect(r.outputTail).toMatch(/timed out after 1 s/);
    const pgid = Number(/pgid (\d+)/.exec(r.outputTail)?.[1]);
    expect(isProcessGroupAlive(pgid)).toBe(false);
  });

  it('stops what a passing command left running in the background', async () => {
    const r = await run('echo "pgid $$"; sleep 300 > /dev/null 2>&1 & exit 0');
    expect(r).toMatchObject({ outcome: 'passed', exitCode: 0 });
    const pgid = Number(/pgid (\d+)/.exec(r.outputTail)?.[1]);
    expect(isProcessGroupAlive(pgid)).toBe(false);
  });
});
