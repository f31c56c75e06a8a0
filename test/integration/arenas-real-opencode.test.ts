/**
 * An arena of two REAL opencode contenders on different models, end to end through boocoder and a
 * real MCP client, on both databases, driven offline by the scripted model server: the same
 * prompt makes each model write its own answer, the repository's check (trusted by the human with
 * `boocoder trust`) passes for one and fails for the other, the passing one ranks first, and
 * picking it lands its file in the repository and rejects the other's change.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { trustRepository } from '../../src/projects/trust.js';
import { opencodeAgentConfig, useAgentBoocoder } from '../helpers/agent-e2e.js';
import { OTHER_MODEL, SCRIPTED_MODEL } from '../helpers/agents-real-opencode.js';
import { callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface ArenaOut {
  state: string;
  winner_task_id: string | null;
  contenders: {
    rank: number;
    task_id: string;
    model: string;
    state: string;
    check: { outcome: string; exit_code: number | null } | null;
    files_changed: number;
    input_tokens: number;
    cost: number;
  }[];
}

describeEachDatabase('an arena of two real opencode contenders', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({
      defaultAgent: 'opencode',
      agents: { opencode: opencodeAgentConfig(models.baseUrl) },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '60000' },
    files: {
      'README.md': '# demo\n',
      '.boocoder.json': JSON.stringify({ check: "grep -qx 'by scripted-model' answer.txt" }),
    },
  });

  it('ranks the contender whose check passed first; picking it lands its file and rejects the other', {
    timeout: 300_000,
  }, async () => {
    const { client, repo } = e;
    await trustRepository(e.boo.home, repo);
    const created = await callOk<{ arena_id: string; task_ids: string[] }>(client, 'new_arena', {
      project: repo,
      input: 'Please create answer.txt with content by {model}',
      // The failing model is queued first: queue order alone would rank it first.
      contenders: [
        { agent: 'opencode', model: OTHER_MODEL },
        { agent: 'opencode', model: SCRIPTED_MODEL },
      ],
    });
    let arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 55 });
    while (arena.state === 'running')
      arena = await callOk<ArenaOut>(client, 'get_arena', { arena_id: created.arena_id, wait_s: 55 });
    expect(e.models.unhandled).toEqual([]);
    const [first, second] = arena.contenders;
    expect(first).toMatchObject({ rank: 1, model: SCRIPTED_MODEL, state: 'completed', files_changed: 1 });
    expect(first?.check).toMatchObject({ outcome: 'passed', exit_code: 0 });
    expect(second).toMatchObject({ rank: 2, model: OTHER_MODEL, state: 'completed', files_changed: 1 });
    expect(second?.check).toMatchObject({ outcome: 'failed', exit_code: 1 });
    for (const c of arena.contenders) {
      expect(c.input_tokens).toBeGreaterThan(0);
      expect(c.cost).toBeGreaterThan(0);
    }

    const decided = await callOk(client, 'decide_arena', {
      arena_id: created.arena_id,
      winner_task_id: first?.task_id,
    });
    expect(decided).toMatchObject({ winner_task_id: first?.task_id, applied: 1, rejected: 1 });
    expect((await readFile(join(repo, 'answer.txt'), 'utf8')).trim()).toBe('by scripted-model');
    const rejected = await callOk<{ changes: { file_path: string }[] }>(client, 'list_pending_changes', {
      task_id: second?.task_id,
      status: 'rejected',
    });
    expect(rejected.changes.map((c) => c.file_path)).toEqual(['answer.txt']);
  });
});
