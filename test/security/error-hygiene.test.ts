/**
 * Information disclosure through error messages: a tool's error text is shown to the client's model,
 * so a failing database or git must not put a connection string, password, host:port or a host path
 * outside the project in front of it. The database is broken for real (privileges revoked, logins
 * refused with live connections killed, the handle closed) and every tool is called through a real
 * MCP client; git fails on a file, a repository without commits, and a repository whose .git is gone.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { silentLogger } from '../../src/log.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import {
  databaseBackends,
  describeEachDatabase,
  isPostgresAvailable,
  type TestDatabase,
} from '../helpers/databases.js';
import { git, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const ZERO_UUID = '00000000-0000-4000-8000-000000000000';

function errorText(res: CallToolResult): string {
  return res.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

/**
 * Fails when `text` holds a secret, a URL with credentials, a host:port, or an absolute path that is
 * not inside one of `allowedPaths` (the project the client itself named).
 */
function expectHygienic(text: string, secrets: string[], allowedPaths: string[]): void {
  for (const s of secrets) expect(text, `leaks ${s}`).not.toContain(s);
  expect(text).not.toMatch(/postgres(ql)?:\/\//i);
  expect(text).not.toMatch(/\b(\d{1,3}\.){3}\d{1,3}:\d+|localhost:\d+/);
  for (const host of [homedir(), process.cwd()]) expect(text).not.toContain(host);
  for (const m of text.matchAll(/(?:^|[\s'"`(=:])(\/[^\s'"`),;]+)/g)) {
    const path = m[1] as string;
    expect(
      allowedPaths.some((p) => path === p || path.startsWith(`${p}/`)),
      `path outside the project in: ${text}`,
    ).toBe(true);
  }
}

/** One call of every tool, with arguments that reach the database. */
function everyToolCall(ids: { repo: string; taskId: string; sessionId: string; projectId: string }) {
  return [
    ['new_task', { project: ids.repo, input: 'say hi' }],
    ['new_task', { project: ids.projectId, input: 'say hi', session_id: ids.sessionId }],
    ['get_task', { task_id: ids.taskId }],
    ['list_tasks', { project_id: ids.projectId }],
    ['cancel_task', { task_id: ids.taskId }],
    ['list_pending_changes', { session_id: ids.sessionId }],
    ['apply_change', { change_id: ZERO_UUID, action: 'apply' }],
    ['get_agent_sessions', { session_id: ids.sessionId }],
    ['probe_agents', {}],
  ] as const;
}

describe('database failures leak no connection details', () => {
  let repos: TempRepos;
  let boo: TestBoocoder | undefined;
  let client: Client | undefined;
  let testDb: TestDatabase | undefined;
  let appDb: Db | undefined;
  let role: string | undefined;

  beforeAll(() => {
    repos = tempRepos();
  });

  afterEach(async () => {
    await client?.close();
    await boo?.close();
    await appDb?.close();
    if (testDb?.connectionString && role) {
      const admin = new pg.Client({ connectionString: testDb.connectionString });
      await admin.connect();
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
      await admin.end();
    }
    await testDb?.close();
    if (testDb?.connectionString && role) {
      const admin = new pg.Client({
        connectionString: testDb.connectionString.replace(/\/[^/]*$/, '/postgres'),
      });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
    client = boo = testDb = appDb = role = undefined;
  });

  afterAll(async () => {
    await repos?.cleanup();
  });

  const start = async (db: Db) => {
    boo = await startTestBoocoder(db);
    client = await connectHttpClient(boo.http.url);
    const repo = await repos.repo();
    const t = await callOk<{ task_id: string; session_id: string; project_id: string }>(client, 'new_task', {
      project: repo,
      input: 'say hi',
    });
    await callOk(client, 'get_task', { task_id: t.task_id, wait_s: 30 });
    return { repo, taskId: t.task_id, sessionId: t.session_id, projectId: t.project_id };
  };

  const callAll = async (ids: Awaited<ReturnType<typeof start>>, secrets: string[]) => {
    const c = client as Client;
    const codes: string[] = [];
    for (const [tool, args] of everyToolCall(ids)) {
      const res = (await c.callTool({ name: tool, arguments: args })) as CallToolResult;
      expect(res.isError, tool).toBe(true);
      const text = errorText(res);
      expectHygienic(text, secrets, [ids.repo]);
      codes.push(text.split(':')[0] as string);
    }
    // The full diff resource is read outside the tools' error wrapper: it must be as careful.
    const resource = await c
      .readResource({ uri: `boocoder://changes/${ZERO_UUID}/diff` })
      .then(() => 'no error')
      .catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    expectHygienic(resource, secrets, [ids.repo]);
    // Only boocoder's own wording: a driver's message (table names, adapter state) stays in the log.
    expect(resource).toMatch(
      /cannot reach the database|database handle is closed|internal error; the server log/,
    );
    return codes;
  };

  describe.skipIf(!isPostgresAvailable())('on PostgreSQL, with a password in the connection string', () => {
    const pgBackend = databaseBackends().find((b) => b.name === 'pg');

    /** A database the app reaches as its own role, whose password is in the connection string. */
    const openWithPassword = async () => {
      testDb = await (pgBackend as NonNullable<typeof pgBackend>).create();
      const suffix = randomBytes(6).toString('hex');
      role = `boocoder_hyg_${suffix}`;
      const password = `Secret-${randomBytes(12).toString('hex')}`;
      const admin = new pg.Client({ connectionString: testDb.connectionString });
      await admin.connect();
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      await admin.query(`GRANT ALL ON SCHEMA boocoder TO ${role}`);
      await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA boocoder TO ${role}`);
      await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA boocoder TO ${role}`);
      await admin.end();
      const url = new URL(testDb.connectionString as string);
      url.username = role;
      url.password = password;
      const connectionString = url.toString();
      appDb = createPgDb({
        connectionString,
        logger: silentLogger,
        listen: { reconnectMinMs: 50, reconnectMaxMs: 200, connectTimeoutMs: 2000 },
      });
      const dbName = url.pathname.slice(1);
      return {
        appDb,
        secrets: [password, connectionString, role, dbName, `${url.hostname}:${url.port || 5432}`],
      };
    };

    const asAdmin = async (sql: string, params: unknown[] = []) => {
      const admin = new pg.Client({ connectionString: testDb?.connectionString });
      await admin.connect();
      try {
        await admin.query(sql, params);
      } finally {
        await admin.end();
      }
    };

    it('hides SQL errors once the role loses its privileges', async () => {
      const { appDb: db, secrets } = await openWithPassword();
      const ids = await start(db);
      await asAdmin(`REVOKE ALL ON ALL TABLES IN SCHEMA boocoder FROM ${role}`);
      const codes = await callAll(ids, secrets);
      expect(codes).toContain('E_INTERNAL');
      await asAdmin(`GRANT ALL ON ALL TABLES IN SCHEMA boocoder TO ${role}`);
    });

    it('hides connection errors once the role may no longer log in and its connections are killed', async () => {
      const { appDb: db, secrets } = await openWithPassword();
      const ids = await start(db);
      await asAdmin(`ALTER ROLE ${role} NOLOGIN`);
      await asAdmin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      const codes = await callAll(ids, secrets);
      expect(codes).toContain('E_DATABASE');
      await asAdmin(`ALTER ROLE ${role} LOGIN`);
    });
  });

  for (const backend of databaseBackends()) {
    it(`hides the failure of a closed database handle [${backend.name}]`, async () => {
      testDb = await backend.create();
      const ids = await start(testDb.db);
      await testDb.db.close();
      const codes = await callAll(ids, [(boo as TestBoocoder).home]);
      expect(codes.every((c) => c === 'E_DATABASE' || c === 'E_INTERNAL')).toBe(true);
    });
  }
});

describeEachDatabase('git failures name no host path but the project', (ctx) => {
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

  const refuse = async (project: string, code: string) => {
    const res = (await client.callTool({
      name: 'new_task',
      arguments: { project, input: 'say hi' },
    })) as CallToolResult;
    expect(res.isError).toBe(true);
    const text = errorText(res);
    expect(text).toMatch(new RegExp(`^${code}: `));
    expectHygienic(text, [boo.home], [project]);
  };

  it('refuses a file, a missing folder, a subfolder and a repository without commits', async () => {
    const repo = await repos.repo({ 'README.md': '# x\n', 'sub/a.txt': 'a\n' });
    await refuse(join(repo, 'README.md'), 'E_NOT_A_GIT_REPO');
    await refuse(join(repo, 'missing'), 'E_NOT_A_GIT_REPO');
    await refuse(join(repo, 'sub'), 'E_NOT_A_GIT_REPO');
    await refuse(await repos.dir(), 'E_NOT_A_GIT_REPO');
    const empty = await repos.dir();
    git(empty, 'init', '-q', '-b', 'main');
    await refuse(empty, 'E_PROJECT_NO_COMMITS');
    const unreadable = join(await repos.dir(), 'repo');
    await mkdir(unreadable);
    await writeFile(join(unreadable, '.git'), 'gitdir: /nonexistent/elsewhere/.git\n');
    await refuse(unreadable, 'E_NOT_A_GIT_REPO');
  });

  it('reports tasks whose repository lost its .git without worktree or git-directory paths', async () => {
    const repo = await repos.repo();
    const first = await callOk<{ task_id: string; project_id: string; session_id: string }>(
      client,
      'new_task',
      { project: repo, input: 'say hi' },
    );
    await callOk(client, 'get_task', { task_id: first.task_id, wait_s: 30 });
    await rm(join(repo, '.git'), { recursive: true, force: true });
    // By project id the path is not re-checked, so git fails in the dispatcher: once in the session
    // whose worktree points at the lost .git, once for a new session.
    for (const extra of [{ session_id: first.session_id }, {}]) {
      const t = await callOk<{ task_id: string }>(client, 'new_task', {
        project: first.project_id,
        input: 'say hi',
        ...extra,
      });
      const done = await callOk<{ state: string; error: string | null; error_code: string | null }>(
        client,
        'get_task',
        { task_id: t.task_id, wait_s: 50 },
      );
      expect(done.state).toBe('failed');
      expect(done.error).toBeTruthy();
      expectHygienic(`${done.error_code}: ${done.error}`, [boo.home], [repo]);
    }
  });
});
