/**
 * Arenas through a real MCP client with the ACP test agent, on both databases: new_arena queues
 * one input for its contenders from a pinned commit; each contender's check runs when it ends;
 * get_arena ranks the one whose check passed first; decide_arena lands the winner's files and
 * rejects the others'; "none" rejects all; list_arenas lists them.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { git, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface ContenderOut {
  rank: number;
  task_id: string;
  agent: string;
  state: string;
  check: { outcome: string; exit_code: number | null; duration_ms: number; output_tail: string } | null;
  files_changed: number;
  lines_added: number;
  lines_removed: number;
  cost: number;
  duration_ms: number | null;
}

interface ArenaOut {
  arena_id: string;
  state: string;
  base_commit: string;
  winner_task_id: string | null;
  contenders: ContenderOut[];
}

describeEachDatabase('arenas', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  let untrusted: string;

  beforeAll(async () => {
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
    untrusted = await repos.repo({
      '.gitignore': 'check-ran\n',
      '.boocoder.json': JSON.stringify({ check: 'echo ran > check-ran' }),
    });
    const spec = acpTestAgentSpec();
    const agent = (answer: string) => ({ command: spec.command, args: spec.args, env: { ANSWER: answer } });
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'good',
        // The same agent twice; each judged by the check with its own environment (ANSWER).
        agents: { good: agent('42'), bad: agent('41') },
        projects: { [repo]: { check: 'echo "checking for $ANSWER"; grep -qx "$ANSWER" answer.txt' } },
      }),
    );
    // One task at a time: the second contender starts after the test moved the repository on.
    boo = await startTestBoocoder(ctx.db, { BOOCODER_CONFIG: configFile, BOOCODER_CONCURRENCY: '1' });
    client = await connectHttpClient(boo.http.url);
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  it('refuses fewer than 2 or more than 8 contenders', async () => {
    const one = await callError(client, 'new_arena', { project: repo, input: 'x', contenders: [{}] });
    expect(one).toMatch(/contenders/);
    const nine = Array.from({ length: 9 }, () => ({ agent: 'good' }));
    expect(await callError(client, 'new_arena', { project: repo, input: 'x', contenders: nine })).toMatch(
      /contenders/,
    );
    const unknown = await callError(client, 'new_arena', {
      project: repo,
      input: 'x',
      contenders: [{ agent: 'good' }, { agent: 'nosuchagent' }],
    });
    expect(unknown).toMatch(/^E_AGENT_NOT_FOUND/);
    expect((await callOk<{ arenas: unknown[] }>(client, 'list_arenas', {})).arenas).toEqual([]);
  });

  it('ranks the contender whose check passed first; picking it lands its files and rejects the other', async () => {
    const head = git(repo, 'rev-parse', 'HEAD');
    const created = await callOk<{ arena_id: string; base_commit: string; task_ids: string[] }>(
      client,
      'new_arena',
      {
        project: repo,
        input: 'sleep 1000\nwrite answer.txt 42',
        // The failing one is queued first: without the check it would rank first (queue order).
        contenders: [{ agent: 'bad' }, { agent: 'good' }],
      },
    );
    expect(created.base_commit).toBe(head);
    // The checkout moves on while the arena runs: every contender still starts from the pinned commit.
    await writeFile(join(repo, 'late.txt'), 'late\n');
    git(repo, 'add', 'late.txt');
    git(repo, 'commit', '-q', '-m', 'late');

    let arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    while (arena.state === 'running')
      arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    expect(arena.state).toBe('finished');
    const [first, second] = arena.contenders as [ContenderOut, ContenderOut];
    expect(first).toMatchObject({
      rank: 1,
      agent: 'good',
      state: 'completed',
      files_changed: 1,
      lines_added: 1,
    });
    expect(first.check).toMatchObject({ outcome: 'passed', exit_code: 0 });
    expect(first.check?.output_tail).toContain('checking for 42');
    expect(second).toMatchObject({ rank: 2, agent: 'bad', state: 'completed', files_changed: 1 });
    expect(second.check).toMatchObject({ outcome: 'failed', exit_code: 1 });
    expect(first.duration_ms).toBeGreaterThan(0);
    for (const c of arena.contenders) {
      const task = await callOk<{ worktree_path: string }>(client, 'get_task', { task_id: c.task_id });
      await expect(stat(join(task.worktree_path, 'late.txt'))).rejects.toThrow(/ENOENT/);
    }

    const decided = await callOk<{ winner_task_id: string; applied: number; rejected: number }>(
      client,
      'decide_arena',
      { arena_id: created.arena_id, winner_task_id: first.task_id },
    );
    expect(decided).toMatchObject({ winner_task_id: first.task_id, applied: 1, rejected: 1 });
    expect(await readFile(join(repo, 'answer.txt'), 'utf8')).toBe('42');
    const statuses = await callOk<{ changes: { status: string }[] }>(client, 'list_pending_changes', {
      task_id: second.task_id,
      status: 'rejected',
    });
    expect(statuses.changes).toHaveLength(1);
    expect(
      await callError(client, 'decide_arena', { arena_id: created.arena_id, winner_task_id: 'none' }),
    ).toMatch(/^E_ARENA_DECIDED/);
    const after = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id });
    expect(after).toMatchObject({ state: 'decided', winner_task_id: first.task_id });
  });

  it('"none" rejects every contender; an unfinished arena cannot be decided', async () => {
    const created = await callOk<{ arena_id: string; task_ids: string[] }>(client, 'new_arena', {
      project: repo,
      input: 'sleep 1500\nwrite other.txt x',
      contenders: [{ agent: 'good' }, { agent: 'good' }],
    });
    expect(
      await callError(client, 'decide_arena', { arena_id: created.arena_id, winner_task_id: 'none' }),
    ).toMatch(/^E_ARENA_NOT_FINISHED/);
    let arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    while (arena.state === 'running')
      arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    const decided = await callOk(client, 'decide_arena', {
      arena_id: created.arena_id,
      winner_task_id: 'none',
    });
    expect(decided).toMatchObject({ winner_task_id: null, applied: 0, rejected: 2 });
    await expect(stat(join(repo, 'other.txt'))).rejects.toThrow(/ENOENT/);
    const listed = await callOk<{ arenas: { arena_id: string; contenders: number; running: number }[] }>(
      client,
      'list_arenas',
      {},
    );
    expect(listed.arenas.map((a) => [a.contenders, a.running])).toEqual([
      [2, 0],
      [2, 0],
    ]);
    expect(listed.arenas.at(-1)?.arena_id).toBe(created.arena_id);
  });

  it("records a repository's untrusted check as untrusted, without running it", async () => {
    const created = await callOk<{ arena_id: string }>(client, 'new_arena', {
      project: untrusted,
      input: 'write x.txt 1',
      contenders: [{ agent: 'good' }, { agent: 'good' }],
    });
    let arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    while (arena.state === 'running')
      arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 50 });
    for (const c of arena.contenders) {
      expect(c).toMatchObject({ state: 'completed', files_changed: 1 });
      expect(c.check).toMatchObject({ outcome: 'untrusted', exit_code: null });
      expect(c.check?.output_tail).toContain('boocoder trust');
      const task = await callOk<{ worktree_path: string }>(client, 'get_task', { task_id: c.task_id });
      await expect(stat(join(task.worktree_path, 'check-ran'))).rejects.toThrow(/ENOENT/);
    }
  });
});
