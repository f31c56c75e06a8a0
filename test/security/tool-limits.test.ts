/**
 * Resource-exhaustion attacks through the tools, over a real MCP client on PGlite and PostgreSQL:
 * an oversized prompt, an over-long value in every string argument, flooding one project's queue,
 * arguments with thousands of elements, and list pages past their bound. Each is refused with a
 * stable code or a validation error naming the argument; list endpoints page through every row once.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_TOOL_INPUT_ELEMENTS } from '../../src/server.js';
import { MAX_INPUT_CHARS } from '../../src/tools/result.js';
import {
  callError,
  callOk,
  connectHttpClient,
  startTestBoocoder,
  type TestBoocoder,
} from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const MAX_QUEUED = 3;
const ZERO_UUID = '00000000-0000-4000-8000-000000000000';
const PAGED_ROWS = 205;

interface Queued {
  task_id: string;
  session_id: string;
  project_id: string;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function text(res: CallToolResult): string {
  const first = res.content[0];
  return first && first.type === 'text' ? first.text : '';
}

/** The SDK's refusal of arguments that fail a tool's input schema, naming the argument. */
function validationError(field: string): RegExp {
  return new RegExp(`^MCP error -32602: Input validation error: .* at ${field}\\b`);
}

describeEachDatabase('tool input limits', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  const queued: string[] = [];

  /** Arguments each tool accepts, so that one over-long value is the only thing wrong. */
  let validArgs: Record<string, Record<string, unknown>>;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db, { BOOCODER_MAX_QUEUED_PER_PROJECT: String(MAX_QUEUED) });
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo();
    validArgs = {
      new_task: { project: repo, input: 'say hi' },
      get_task: { task_id: ZERO_UUID },
      list_tasks: {},
      cancel_task: { task_id: ZERO_UUID },
      list_pending_changes: {},
      apply_change: { change_id: ZERO_UUID, action: 'reject' },
      get_agent_sessions: { session_id: ZERO_UUID },
      probe_agents: {},
      list_permission_requests: {},
      answer_permission: { request_id: ZERO_UUID, option_id: 'once' },
      new_arena: { project: repo, input: 'say hi', contenders: [{}, {}] },
      get_arena: { arena_id: ZERO_UUID },
      decide_arena: { arena_id: ZERO_UUID, winner_task_id: 'none' },
      list_arenas: {},
      get_transcript: { task_id: ZERO_UUID },
      list_inbox: {},
      get_usage: {},
    };
  });

  afterAll(async () => {
    if (client) {
      for (const id of queued.reverse()) await call(client, 'cancel_task', { task_id: id });
      for (const id of queued) await call(client, 'get_task', { task_id: id, wait_s: 30 });
    }
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  it('refuses a prompt one character over the maximum, naming input, and queues nothing', async () => {
    const res = await call(client, 'new_task', { project: repo, input: 'x'.repeat(MAX_INPUT_CHARS + 1) });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(validationError('input'));
    expect(text(res)).toContain(String(MAX_INPUT_CHARS));
    const { rows } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows[0]?.n).toBe(0);
  });

  it('bounds every string argument of every tool and refuses a value past the bound', async () => {
    const { tools } = await client.listTools();
    let checked = 0;
    for (const tool of tools) {
      const base = validArgs[tool.name];
      expect(base, `valid arguments for ${tool.name}`).toBeDefined();
      const props = (tool.inputSchema.properties ?? {}) as Record<
        string,
        { type?: string; maxLength?: number; pattern?: string }
      >;
      for (const [name, schema] of Object.entries(props)) {
        if (schema.type !== 'string') continue;
        // Unbounded text would let one call fill the database or the model's context.
        expect(
          schema.maxLength !== undefined || schema.pattern !== undefined,
          `${tool.name}.${name} has no bound`,
        ).toBe(true);
        const res = await call(client, tool.name, {
          ...base,
          [name]: 'a'.repeat((schema.maxLength ?? 64 * 1024) + 1),
        });
        expect(res.isError, `${tool.name}.${name}`).toBe(true);
        expect(text(res), `${tool.name}.${name}`).toMatch(validationError(name));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
    const { rows } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows[0]?.n).toBe(0);
  });

  it(`refuses arguments of more than ${MAX_TOOL_INPUT_ELEMENTS} elements before any work`, async () => {
    const many = Array.from({ length: 2 * MAX_TOOL_INPUT_ELEMENTS }, (_, i) => i);
    const wide = Object.fromEntries(many.map((i) => [`k${i}`, i]));
    const deep = { a: [many.slice(0, 700), many.slice(0, 700)] };
    for (const extra of [{ padding: many }, { padding: wide }, { padding: deep }]) {
      for (const [tool, args] of Object.entries(validArgs)) {
        const res = await call(client, tool, { ...args, ...extra });
        expect(res.isError, tool).toBe(true);
        expect(text(res)).toMatch(new RegExp(`more than the maximum of ${MAX_TOOL_INPUT_ELEMENTS} elements`));
      }
    }
    // Below the bound the same shape is fine (unknown members are dropped by the schema).
    const ok = await call(client, 'list_tasks', { padding: many.slice(0, MAX_TOOL_INPUT_ELEMENTS - 10) });
    expect(ok.isError).toBeFalsy();
    const { rows } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows[0]?.n).toBe(0);
  });

  it(`refuses a project's task number ${MAX_QUEUED + 1} with E_TOO_MANY_TASKS while the queue is full`, async () => {
    const queue = async (args: Record<string, unknown>) => {
      const t = await callOk<Queued>(client, 'new_task', { project: repo, ...args });
      queued.push(t.task_id);
      return t;
    };
    // The session's first task sleeps, so the others stay pending behind it.
    const blocker = await queue({ input: 'sleep 60000' });
    const pending: Queued[] = [];
    for (let i = 1; i < MAX_QUEUED; i++)
      pending.push(await queue({ input: `say ${i}`, session_id: blocker.session_id }));
    const refused = await callError(client, 'new_task', {
      project: repo,
      input: 'say one too many',
      session_id: blocker.session_id,
    });
    expect(refused).toMatch(new RegExp(`^E_TOO_MANY_TASKS: project already has ${MAX_QUEUED} `));
    // A new session of the same project counts against the same project.
    expect(await callError(client, 'new_task', { project: repo, input: 'say new session' })).toMatch(
      /^E_TOO_MANY_TASKS/,
    );
    const { rows } = await ctx.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM tasks WHERE project_id = $1',
      [blocker.project_id],
    );
    expect(rows[0]?.n).toBe(MAX_QUEUED);

    // The limit is per project: another repository still gets its task.
    const other = await repos.repo();
    const elsewhere = await queue({ project: other, input: 'say elsewhere' });
    expect(elsewhere.project_id).not.toBe(blocker.project_id);

    // Freeing a slot lets the project queue again.
    await callOk(client, 'cancel_task', { task_id: pending[0]?.task_id });
    await queue({ input: 'say after a cancel', session_id: blocker.session_id });
  });

  let projectId: string;
  let sessionId: string;

  /** Rows straight in the tables (already finished, so no dispatcher picks them up). */
  const seedRows = async () => {
    projectId = randomUUID();
    sessionId = randomUUID();
    await ctx.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO projects (id, root_path, name) VALUES ($1, $2, 'paging')`, [
        projectId,
        `/nonexistent/paging-${projectId}`,
      ]);
      await tx.query('INSERT INTO sessions (id, project_id) VALUES ($1, $2)', [sessionId, projectId]);
      await tx.query(
        `INSERT INTO tasks (project_id, session_id, state, input, agent, ended_at)
           SELECT $1, $2, 'cancelled', 'paged ' || g, 'fixture', clock_timestamp() FROM generate_series(1, $3::int) g`,
        [projectId, sessionId, PAGED_ROWS],
      );
      await tx.query(
        `INSERT INTO pending_changes (session_id, task_id, file_path, operation, diff, status, agent)
           SELECT $1, (SELECT id FROM tasks WHERE session_id = $1 ORDER BY seq LIMIT 1), 'f' || g || '.txt',
                  'create', '+x', 'rejected', 'fixture'
             FROM generate_series(1, $2::int) g`,
        [sessionId, PAGED_ROWS],
      );
    });
  };

  const pageAll = async (tool: string, key: string, args: Record<string, unknown>, limit: number) => {
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < PAGED_ROWS + 2; pages++) {
      const page: Record<string, unknown> = await callOk(client, tool, {
        ...args,
        limit,
        ...(cursor ? { cursor } : {}),
      });
      const rows = page[key] as Record<string, string>[];
      expect(rows.length).toBeLessThanOrEqual(limit);
      ids.push(...rows.map((r) => (key === 'tasks' ? r.task_id : r.change_id) as string));
      cursor = page.next_cursor as string | null;
      if (!cursor) return ids;
    }
    throw new Error(`${tool} never ended its pages`);
  };

  it('pages list_tasks and list_pending_changes: every row exactly once, in queue order', async () => {
    await seedRows();
    const tasks = await ctx.db.query<{ id: string }>(
      'SELECT id FROM tasks WHERE project_id = $1 ORDER BY seq',
      [projectId],
    );
    const changes = await ctx.db.query<{ id: string }>(
      'SELECT id FROM pending_changes WHERE session_id = $1 ORDER BY seq',
      [sessionId],
    );
    expect(tasks.rows).toHaveLength(PAGED_ROWS);
    for (const limit of [7, 200]) {
      expect(await pageAll('list_tasks', 'tasks', { project_id: projectId }, limit)).toEqual(
        tasks.rows.map((r) => r.id),
      );
      expect(
        await pageAll(
          'list_pending_changes',
          'changes',
          { session_id: sessionId, status: 'rejected' },
          limit,
        ),
      ).toEqual(changes.rows.map((r) => r.id));
    }
  });

  it('caps a page at 200 rows and 50 by default', async () => {
    for (const tool of ['list_tasks', 'list_pending_changes']) {
      for (const limit of [201, 0, -1, 1.5, 1e9]) {
        const res = await call(client, tool, { limit });
        expect(res.isError, `${tool} limit ${limit}`).toBe(true);
        expect(text(res)).toMatch(validationError('limit'));
      }
    }
    const first = await callOk<{ tasks: unknown[]; next_cursor: string | null }>(client, 'list_tasks', {
      project_id: projectId,
    });
    expect(first.tasks).toHaveLength(50);
    expect(first.next_cursor).toBeTruthy();
    const max = await callOk<{ changes: unknown[]; next_cursor: string | null }>(
      client,
      'list_pending_changes',
      {
        session_id: sessionId,
        status: 'rejected',
        limit: 200,
      },
    );
    expect(max.changes).toHaveLength(200);
    expect(max.next_cursor).toBeTruthy();
  });
});
