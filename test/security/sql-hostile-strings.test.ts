/**
 * SQL injection and encoding attacks through every text argument of every tool, over a real MCP
 * client on PGlite and PostgreSQL. A hostile string either round-trips byte for byte (read back
 * through the tools and straight from the table) or is refused with a clean isError result that is
 * not E_INTERNAL; afterwards every table still exists.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_INPUT_CHARS } from '../../src/tools/result.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { git, type TempRepos, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

/** Classic injection payloads, placeholder look-alikes, escapes and awkward unicode. */
const HOSTILE = [
  "'; drop table tasks; --",
  "x'); DROP TABLE projects; SELECT ('",
  '$1',
  '$1::text, $2); DELETE FROM tasks; --',
  'back\\slash \\\\ \\x00 \\0 \\n \\',
  "E'\\x27' || chr(39) || '",
  '日本語 ünïcödé 🎉 \u202eright-to-left\u202c \u2028\u2029',
  '%_ LIKE wildcards \\% \\_',
  '"double" `back` \r\n\ttabs\u0001\u001f\u007f',
];
const TABLES = [
  'projects',
  'sessions',
  'chats',
  'tasks',
  'worktrees',
  'pending_changes',
  'available_agents',
  'agent_sessions',
];
const NUL = 'before\u0000after';
const ONE_MB = `'; drop table tasks; -- $1 \\ 日本 ${'x'.repeat(1024 * 1024)}`;

interface TaskOut {
  task_id: string;
  session_id: string;
  project_id: string;
  input: string;
  model: string | null;
  state: string;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function errorText(res: CallToolResult): string {
  const first = res.content[0];
  return first && first.type === 'text' ? first.text : '';
}

/** A refusal must be a tool error the model can act on, never an internal failure or a crash. */
async function expectCleanRefusal(client: Client, name: string, args: Record<string, unknown>) {
  const res = await call(client, name, args);
  expect(res.isError, `${name} ${JSON.stringify(args).slice(0, 120)}`).toBe(true);
  const text = errorText(res);
  expect(text).not.toMatch(/E_INTERNAL/);
  expect(text.length).toBeGreaterThan(0);
  return text;
}

describeEachDatabase('hostile strings in tool arguments', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  let blocker: TaskOut;
  const queued: string[] = [];

  /** Queues into the blocked session, so the agent never runs the hostile text. */
  const queue = async (args: Record<string, unknown>) => {
    const t = await callOk<TaskOut>(client, 'new_task', {
      project: repo,
      session_id: blocker.session_id,
      ...args,
    });
    queued.push(t.task_id);
    return t;
  };

  const storedTask = async (id: string) => {
    const { rows } = await ctx.db.query<{ input: string; model: string | null }>(
      'SELECT input, model FROM tasks WHERE id = $1',
      [id],
    );
    return rows[0];
  };

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo();
    // The first task of the session sleeps, so every later task of the session stays pending.
    blocker = await callOk<TaskOut>(client, 'new_task', { project: repo, input: 'sleep 60000' });
    queued.push(blocker.task_id);
  });

  afterAll(async () => {
    if (client) {
      for (const id of queued.reverse()) await call(client, 'cancel_task', { task_id: id });
      if (blocker) await call(client, 'get_task', { task_id: blocker.task_id, wait_s: 30 });
    }
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  it('stores a hostile task input and model unchanged and reads them back through every tool', async () => {
    for (const s of HOSTILE) {
      const t = await queue({ input: s, model: s });
      expect(await storedTask(t.task_id)).toEqual({ input: s, model: s });
      const read = await callOk<TaskOut>(client, 'get_task', { task_id: t.task_id });
      expect(read.input).toBe(s);
      expect(read.model).toBe(s);
    }
    const listed = await callOk<{ tasks: TaskOut[] }>(client, 'list_tasks', {
      session_id: blocker.session_id,
      limit: 200,
    });
    for (const s of HOSTILE) expect(listed.tasks.filter((t) => t.input === s)).toHaveLength(1);
  });

  it(`stores an input of MAX_INPUT_CHARS (${MAX_INPUT_CHARS}) hostile characters whole`, async () => {
    const unit = HOSTILE.join('|');
    const big = unit.repeat(Math.ceil(MAX_INPUT_CHARS / unit.length)).slice(0, MAX_INPUT_CHARS);
    const t = await queue({ input: big });
    expect((await storedTask(t.task_id))?.input).toBe(big);
    const read = await callOk<TaskOut>(client, 'get_task', { task_id: t.task_id });
    // get_task shows a preview; its start must still be the exact text.
    expect(big.startsWith(read.input.replace(/… \(truncated\)$/, ''))).toBe(true);
  });

  it('refuses a 1 MB string in every text argument with a validation error naming it', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['new_task', { project: repo, input: ONE_MB }, 'input'],
      ['new_task', { project: ONE_MB, input: 'x' }, 'project'],
      ['new_task', { project: repo, input: 'x', model: ONE_MB }, 'model'],
      ['new_task', { project: repo, input: 'x', agent: ONE_MB }, 'agent'],
      ['list_tasks', { agent: ONE_MB }, 'agent'],
      ['list_tasks', { state: ONE_MB }, 'state'],
      ['list_tasks', { cursor: ONE_MB }, 'cursor'],
      ['list_pending_changes', { agent: ONE_MB }, 'agent'],
      ['list_pending_changes', { status: ONE_MB }, 'status'],
      ['list_pending_changes', { cursor: ONE_MB }, 'cursor'],
      ['apply_change', { change_id: ONE_MB, action: 'apply' }, 'change_id'],
      ['apply_change', { change_id: '00000000-0000-4000-8000-000000000000', action: ONE_MB }, 'action'],
      ['get_task', { task_id: ONE_MB }, 'task_id'],
      ['cancel_task', { task_id: ONE_MB }, 'task_id'],
      ['get_agent_sessions', { session_id: ONE_MB }, 'session_id'],
    ];
    for (const [tool, args, field] of cases) {
      const text = await expectCleanRefusal(client, tool, args);
      expect(text, `${tool}.${field}`).toMatch(
        new RegExp(`^MCP error -32602: Input validation error: .* at ${field}\\b`),
      );
      // The refusal does not echo the megabyte back.
      expect(text.length).toBeLessThan(4096);
    }
  });

  it('refuses a NUL character in free text with E_INVALID_INPUT naming the field', async () => {
    expect(await expectCleanRefusal(client, 'new_task', { project: repo, input: NUL })).toMatch(
      /^E_INVALID_INPUT: input .*NUL/,
    );
    expect(await expectCleanRefusal(client, 'new_task', { project: repo, input: 'x', model: NUL })).toMatch(
      /^E_INVALID_INPUT: model .*NUL/,
    );
    expect(await expectCleanRefusal(client, 'new_task', { project: `${repo}/${NUL}`, input: 'x' })).toMatch(
      /^E_INVALID_INPUT: project .*NUL/,
    );
    for (const [tool, field] of [
      ['list_tasks', 'agent'],
      ['list_tasks', 'state'],
      ['list_tasks', 'cursor'],
      ['list_pending_changes', 'agent'],
      ['list_pending_changes', 'status'],
      ['list_pending_changes', 'cursor'],
    ] as const) {
      await expectCleanRefusal(client, tool, { [field]: NUL });
    }
    const { rows } = await ctx.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE strpos(input, 'before') > 0`,
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('refuses hostile strings in filters, agent names, ids and cursors cleanly', async () => {
    for (const s of [...HOSTILE, '--foo', ';rm -rf /', 'fixture; drop table tasks']) {
      await expectCleanRefusal(client, 'new_task', { project: repo, input: 'x', agent: s });
      await expectCleanRefusal(client, 'new_task', { project: s, input: 'x' });
      for (const tool of ['list_tasks', 'list_pending_changes']) {
        await expectCleanRefusal(client, tool, { agent: s });
        await expectCleanRefusal(client, tool, { cursor: s });
        await expectCleanRefusal(client, tool, { project_id: s, session_id: s });
      }
      await expectCleanRefusal(client, 'list_tasks', { state: s });
      await expectCleanRefusal(client, 'list_pending_changes', { status: s });
      await expectCleanRefusal(client, 'get_task', { task_id: s });
      await expectCleanRefusal(client, 'cancel_task', { task_id: s });
      await expectCleanRefusal(client, 'get_agent_sessions', { session_id: s });
      await expectCleanRefusal(client, 'apply_change', {
        change_id: '00000000-0000-4000-8000-000000000000',
        action: s,
      });
      // A cursor that decodes to hostile text is refused by the cursor check, not by SQL.
      const forged = Buffer.from(`c:1; ${s}`).toString('base64url').slice(0, 100);
      expect(await expectCleanRefusal(client, 'list_tasks', { cursor: forged })).toMatch(
        /^E_INVALID_INPUT: cursor/,
      );
    }
  });

  it('registers a repository whose path is hostile and stores the path unchanged', async () => {
    const parent = await repos.dir();
    const hostileRepo = join(parent, "it's $1 \\ 日本 '; drop table projects; --");
    await mkdir(hostileRepo);
    git(hostileRepo, 'init', '-q', '-b', 'main');
    await writeFiles(hostileRepo, { 'README.md': 'x\n' });
    git(hostileRepo, 'add', '-A');
    git(hostileRepo, 'commit', '-q', '-m', 'initial');
    const t = await callOk<TaskOut>(client, 'new_task', { project: hostileRepo, input: 'say ok' });
    queued.push(t.task_id);
    const { rows } = await ctx.db.query<{ root_path: string }>(
      'SELECT root_path FROM projects WHERE id = $1',
      [t.project_id],
    );
    expect(rows[0]?.root_path).toBe(hostileRepo);
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id: t.task_id, wait_s: 50 });
    expect(done.state).toBe('completed');
    const listed = await callOk<{ tasks: TaskOut[] }>(client, 'list_tasks', { project_id: t.project_id });
    expect(listed.tasks.map((x) => x.task_id)).toEqual([t.task_id]);
  });

  it('leaves every table in place', async () => {
    for (const table of TABLES) {
      const { rows } = await ctx.db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
      expect(rows[0]?.t, table).toBe(table);
    }
    const { rows } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows[0]?.n).toBe(queued.length);
  });
});
