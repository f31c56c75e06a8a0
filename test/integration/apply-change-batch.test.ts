/**
 * apply_change with change_ids, through the real SDK client against a real boocoder on PGlite and
 * PostgreSQL: many changes applied, reverted or rejected in one call, all or nothing, with the rows
 * and the user's checkout checked after each call.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Change {
  change_id: string;
  file_path: string;
  operation: string;
  status: string;
}

describeEachDatabase('apply_change with change_ids', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  /** Runs the fixture agent on `input` in `repo` and returns the changes it left, in file order. */
  const changesOf = async (repo: string, input: string): Promise<Change[]> => {
    const queued = await callOk<{ task_id: string }>(client, 'new_task', { project: repo, input });
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    expect(done.state).toBe('completed');
    const { changes } = await callOk<{ changes: Change[] }>(client, 'list_pending_changes', {
      task_id: queued.task_id,
    });
    return changes;
  };

  const statuses = async (ids: string[]): Promise<string[]> => {
    const { rows } = await ctx.db.query<{ id: string; status: string }>(
      'SELECT id, status FROM pending_changes WHERE id = ANY($1::uuid[])',
      [ids],
    );
    return ids.map((id) => rows.find((r) => r.id === id)?.status ?? 'missing');
  };

  it('applies, reverts and rejects many changes in one call each, listing every change', async () => {
    const repo = await repos.repo({ 'a.txt': 'a1\n', 'gone.txt': 'bye\n' });
    const before = await snapshot(repo);
    const changes = await changesOf(repo, 'write a.txt a2\nwrite new/c.txt c\ndelete gone.txt');
    const ids = changes.map((c) => c.change_id);
    expect(ids.length).toBe(3);

    const applied = await callOk<{ changes: Change[] }>(client, 'apply_change', {
      change_ids: ids,
      action: 'apply',
    });
    expect(applied.changes).toEqual(
      changes.map((c) => ({
        change_id: c.change_id,
        file_path: c.file_path,
        operation: c.operation,
        status: 'applied',
      })),
    );
    expect(await readFile(join(repo, 'a.txt'), 'utf8')).toBe('a2');
    expect(await readFile(join(repo, 'new/c.txt'), 'utf8')).toBe('c');
    await expect(stat(join(repo, 'gone.txt'))).rejects.toThrow(/ENOENT/);
    expect(await statuses(ids)).toEqual(['applied', 'applied', 'applied']);

    const reverted = await callOk<{ changes: Change[] }>(client, 'apply_change', {
      change_ids: [...ids].reverse(),
      action: 'revert',
    });
    expect(reverted.changes.map((c) => [c.change_id, c.status])).toEqual(
      [...ids].reverse().map((id) => [id, 'reverted']),
    );
    expect(await snapshot(repo)).toEqual(before);

    await callOk(client, 'apply_change', { change_ids: ids, action: 'reject' });
    expect(await statuses(ids)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await snapshot(repo)).toEqual(before);
  });

  it('applies nothing when one file moved and does not merge, and the error names it', async () => {
    const repo = await repos.repo({ 'x.txt': 'x1\n', 'y.txt': 'y1\n' });
    const changes = await changesOf(repo, 'write x.txt x2\nwrite y.txt y2');
    const ids = changes.map((c) => c.change_id);
    await writeFile(join(repo, 'y.txt'), 'the user edited y\n');
    const before = await snapshot(repo);
    expect(await callError(client, 'apply_change', { change_ids: ids, action: 'apply' })).toMatch(
      /^E_MERGE_CONFLICT: "y.txt" changed/,
    );
    expect(await snapshot(repo)).toEqual(before);
    expect(await statuses(ids)).toEqual(['pending', 'pending']);

    // One change in the wrong status stops the batch too, named, with nothing written.
    await writeFile(join(repo, 'y.txt'), 'y1\n');
    await callOk(client, 'apply_change', { change_id: ids[0], action: 'apply' });
    expect(await callError(client, 'apply_change', { change_ids: ids, action: 'apply' })).toMatch(
      new RegExp(`^E_CHANGE_NOT_PENDING: change ${ids[0]} is applied`),
    );
    expect(await readFile(join(repo, 'y.txt'), 'utf8')).toBe('y1\n');
    expect(await statuses(ids)).toEqual(['applied', 'pending']);
  });

  it('refuses unclear or mixed input, naming the field or the change, and changes nothing', async () => {
    const repo = await repos.repo({ 'p.txt': 'p\n' });
    const other = await repos.repo({ 'q.txt': 'q\n' });
    const [mine] = await changesOf(repo, 'write p.txt p2');
    const [theirs] = await changesOf(other, 'write q.txt q2');
    const id = mine?.change_id as string;
    const both = await callError(client, 'apply_change', {
      change_id: id,
      change_ids: [id],
      action: 'apply',
    });
    expect(both).toMatch(/^E_INVALID_INPUT: give either change_id or change_ids, not both/);
    expect(await callError(client, 'apply_change', { action: 'apply' })).toMatch(
      /^E_INVALID_INPUT: give change_id .* or change_ids/,
    );
    const twice = (await client.callTool({
      name: 'apply_change',
      arguments: { change_ids: [id, id.toUpperCase()], action: 'apply' },
    })) as CallToolResult;
    expect(twice.isError).toBe(true);
    expect(JSON.stringify(twice.content)).toMatch(/Input validation error: .*at change_ids/);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await callError(client, 'apply_change', { change_ids: [id, unknown], action: 'apply' })).toBe(
      `E_CHANGE_NOT_FOUND: no pending change has id ${unknown}`,
    );
    expect(
      await callError(client, 'apply_change', { change_ids: [id, theirs?.change_id], action: 'apply' }),
    ).toMatch(/^E_INVALID_INPUT: these changes belong to 2 projects/);
    expect(await statuses([id, theirs?.change_id as string])).toEqual(['pending', 'pending']);
    expect(await readFile(join(repo, 'p.txt'), 'utf8')).toBe('p\n');

    // The one-change form keeps its result shape.
    expect(await callOk(client, 'apply_change', { change_id: id, action: 'apply' })).toEqual({
      change_id: id,
      file_path: 'p.txt',
      operation: 'edit',
      status: 'applied',
    });
  });

  it('puts every file back when the status update fails after the files were written', async () => {
    const repo = await repos.repo({ 'keep.txt': 'k1\n' });
    const before = await snapshot(repo);
    const changes = await changesOf(repo, 'write keep.txt k2\nwrite explode.txt boom');
    const ids = changes.map((c) => c.change_id);
    // The database refuses the status update of one row, after apply has written both files.
    await ctx.db.query(`CREATE FUNCTION refuse_explode() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await ctx.db.query(`CREATE TRIGGER refuse_explode BEFORE UPDATE ON pending_changes FOR EACH ROW
      WHEN (NEW.file_path = 'explode.txt') EXECUTE FUNCTION refuse_explode()`);
    try {
      expect(await callError(client, 'apply_change', { change_ids: ids, action: 'apply' })).toMatch(/^E_/);
    } finally {
      await ctx.db.query('DROP TRIGGER refuse_explode ON pending_changes');
      await ctx.db.query('DROP FUNCTION refuse_explode()');
    }
    expect(await snapshot(repo)).toEqual(before);
    expect(await statuses(ids)).toEqual(['pending', 'pending']);
  });
});
