/**
 * Agents confined to their worktree, attacked the way `npm start` from a checkout sets boocoder up:
 * boocoder runs from a decoy git repository (its cwd and PWD), with npm's variables naming that
 * checkout, npm's node_modules/.bin first on PATH holding an `opencode` of its own, its daemon token,
 * a database URL with a password and other BOOCODER_* settings in its environment. On every path
 * that starts an agent process here (ACP through the dispatcher, headless through the dispatcher,
 * the probe's handshake), the agent dumps the environment it got: PWD is its own folder, none of
 * those secrets or npm variables are there, nothing lands in the decoy. An agent that writes into
 * the project's checkout or the decoy anyway fails its task with E_AGENT_WROTE_OUTSIDE_WORKTREE,
 * whose message names no host path. The opencode serve path (real opencode): see
 * agents-real-opencode-decoy.test.ts.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { type FakeUserHome, fakeUserHome } from '../helpers/agents-real-opencode.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const FAKE_HEADLESS = new URL('../fixtures/headless-fake-agent.mjs', import.meta.url);
const TOKEN = 'daemon-token-must-not-reach-agents-0123';
const DB_PASSWORD = 's3cret-db-password';

interface Dump {
  cwd: string;
  env: Record<string, string>;
}

interface Settled {
  state: string;
  error: string | null;
  error_code: string | null;
}

/** What boocoder's own environment must never hand an agent, and PWD must be the agent's cwd. */
function expectConfined(dump: Dump, cwd: string, decoy: string): void {
  expect(dump.cwd).toBe(cwd);
  expect(dump.env.PWD).toBe(cwd);
  const keys = Object.keys(dump.env);
  expect(keys.filter((k) => /^(BOOCODER_|npm_)/.test(k))).toEqual([]);
  for (const k of ['DATABASE_URL', 'TEST_DATABASE_URL', 'INIT_CWD', 'OLDPWD', 'GIT_DIR'])
    expect(dump.env[k], k).toBeUndefined();
  const text = JSON.stringify(dump.env);
  expect(text).not.toContain(TOKEN);
  expect(text).not.toContain(DB_PASSWORD);
  expect(text).not.toContain(decoy);
  expect(text).not.toContain('node_modules/.bin');
}

describeEachDatabase('agents confined to their worktree, boocoder started from a decoy repository', (ctx) => {
  let repos: TempRepos;
  let user: FakeUserHome;
  let decoy: string;
  let decoyBefore: Map<string, string>;
  let probeDump: string;
  let fakeBin: string;
  let boo: TestBoocoder | undefined;
  let client: Client | undefined;
  const startedIn = process.cwd();

  beforeAll(async () => {
    repos = tempRepos();
    user = await fakeUserHome();
    decoy = await repos.repo({ 'README.md': '# the checkout boocoder was started from\n' });
    // The checkout's node_modules/.bin, first on PATH as under `npm start`: its opencode fails.
    const npmBin = join(await repos.dir(), 'node_modules', '.bin');
    await mkdir(npmBin, { recursive: true });
    await writeFile(join(npmBin, 'opencode'), '#!/bin/sh\necho npm-bin-opencode-ran >&2\nexit 7\n', {
      mode: 0o755,
    });
    // The user's own opencode: the headless fake.
    fakeBin = join(await repos.dir(), 'bin');
    await mkdir(fakeBin);
    await copyFile(FAKE_HEADLESS, join(fakeBin, 'opencode'));
    await chmod(join(fakeBin, 'opencode'), 0o755);
    probeDump = join(await repos.dir(), 'probe-env.json');
    const spec = acpTestAgentSpec();
    const configFile = join(await repos.dir(), 'config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'fixture',
        agents: {
          fixture: { command: spec.command, args: spec.args },
          dumper: { command: spec.command, args: spec.args, env: { ACP_TEST_ENV_DUMP: probeDump } },
        },
      }),
    );
    decoyBefore = await snapshot(decoy);
    process.chdir(decoy);
    boo = await startTestBoocoder(ctx.db, {
      HOME: user.path,
      BOOCODER_CONFIG: configFile,
      BOOCODER_TOKEN: TOKEN,
      BOOCODER_ALLOWED_ORIGINS: 'http://decoy.invalid',
      DATABASE_URL: `postgres://boo:${DB_PASSWORD}@127.0.0.1:1/unused`,
      TEST_DATABASE_URL: `postgres://boo:${DB_PASSWORD}@127.0.0.1:1/unused`,
      PATH: `${npmBin}:${fakeBin}:/usr/bin:/bin`,
      PWD: decoy,
      OLDPWD: decoy,
      INIT_CWD: decoy,
      npm_package_json: join(decoy, 'package.json'),
      npm_config_local_prefix: decoy,
      npm_lifecycle_event: 'start',
      GIT_DIR: join(decoy, '.git'),
    });
    client = await connectHttpClient(boo.http.url, TOKEN);
  });

  afterAll(async () => {
    process.chdir(startedIn);
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
    await user?.cleanup();
  });

  async function runTask(args: Record<string, unknown>): Promise<{ sessionId: string; done: Settled }> {
    const c = client as Client;
    const q = await callOk<{ task_id: string; session_id: string }>(c, 'new_task', args);
    for (;;) {
      const done = await callOk<Settled>(c, 'get_task', { task_id: q.task_id, wait_s: 30 });
      if (done.state !== 'pending' && done.state !== 'running') return { sessionId: q.session_id, done };
    }
  }

  const worktreeOf = (sessionId: string) => join((boo as TestBoocoder).home, 'worktrees', sessionId);
  const readDump = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Dump;

  it('acp: the agent’s PWD is its worktree, it holds none of boocoder’s secrets, the decoy stays as it was', async () => {
    const repo = await repos.repo();
    const { sessionId, done } = await runTask({
      project: repo,
      input: 'env-dump env.json\nwrite-pwd from-pwd.txt written relative to PWD',
    });
    expect(done).toMatchObject({ state: 'completed', error: null });
    const worktree = worktreeOf(sessionId);
    expectConfined(await readDump(join(worktree, 'env.json')), worktree, decoy);
    expect(await readFile(join(worktree, 'from-pwd.txt'), 'utf8')).toBe('written relative to PWD');
    expect(await snapshot(decoy)).toEqual(decoyBefore);
  });

  it('headless: the user’s opencode runs (not npm’s), in its worktree as PWD, without secrets; the decoy stays', async () => {
    const repo = await repos.repo();
    const { sessionId, done } = await runTask({
      project: repo,
      agent: 'opencode',
      execution_path: 'headless',
      input: 'env-dump',
    });
    expect(done).toMatchObject({ state: 'completed', error: null });
    const worktree = worktreeOf(sessionId);
    const dump = await readDump(join(worktree, 'env.json'));
    expectConfined(dump, worktree, decoy);
    expect(dump.env.PATH).toBe(`${fakeBin}:/usr/bin:/bin`);
    expect(await readFile(join(worktree, 'from-pwd.txt'), 'utf8')).toBe('written relative to PWD\n');
    expect(await snapshot(decoy)).toEqual(decoyBefore);
  });

  it('probe: the handshake runs in its throw-away folder as PWD, without secrets; npm’s opencode is not found', async () => {
    const { agents } = await callOk<{ agents: Record<string, unknown>[] }>(client as Client, 'probe_agents', {
      refresh: true,
    });
    const dump = await readDump(probeDump);
    expectConfined(dump, dump.cwd, decoy);
    expect(dump.cwd).not.toBe(decoy);
    // What the config entry sets does reach the agent.
    expect(dump.env.ACP_TEST_ENV_DUMP).toBe(probeDump);
    expect(agents.find((a) => a.name === 'opencode')).toMatchObject({
      install_path: join(fakeBin, 'opencode'),
      found_via: 'PATH',
      version: '0.0.1-fake',
    });
    expect(await snapshot(decoy)).toEqual(decoyBefore);
  });

  it('an agent writing into the project’s checkout fails its task, naming the file relative to the project', async () => {
    const repo = await repos.repo();
    const { sessionId, done } = await runTask({
      project: repo,
      input: `write ${join(repo, 'notes', 'stray.txt')} past review\nwrite inside.txt reviewed`,
    });
    expect(done).toMatchObject({ state: 'failed', error_code: 'E_AGENT_WROTE_OUTSIDE_WORKTREE' });
    // git status shows the new untracked folder, not each file in it.
    expect(done.error).toContain('notes/');
    expect(done.error).not.toContain(repo);
    expect(done.error).not.toContain(decoy);
    // What it did in its worktree is pending for review as usual.
    const { changes } = await callOk<{ changes: { file_path: string }[] }>(
      client as Client,
      'list_pending_changes',
      {
        session_id: sessionId,
      },
    );
    expect(changes.map((c) => c.file_path)).toEqual(['inside.txt']);
  });

  it('apply_change writing the checkout while another task runs is not blamed on that task’s agent', async () => {
    const c = client as Client;
    const repo = await repos.repo();
    const first = await runTask({ project: repo, input: 'write applied.txt from the first task' });
    expect(first.done).toMatchObject({ state: 'completed' });
    const go = join(await repos.dir(), 'go');
    const second = await callOk<{ task_id: string; session_id: string }>(c, 'new_task', {
      project: repo,
      input: `write started.txt x\nwait-for ${go}`,
    });
    // The agent runs, so the watch of the checkout has started: apply the first task's change now.
    while (!existsSync(join(worktreeOf(second.session_id), 'started.txt'))) await delay(50);
    const { changes } = await callOk<{ changes: { change_id: string }[] }>(c, 'list_pending_changes', {
      session_id: first.sessionId,
    });
    for (const change of changes)
      await callOk(c, 'apply_change', { change_id: change.change_id, action: 'apply' });
    expect(await readFile(join(repo, 'applied.txt'), 'utf8')).toBe('from the first task');
    await writeFile(go, '');
    for (;;) {
      const done = await callOk<Settled>(c, 'get_task', { task_id: second.task_id, wait_s: 30 });
      if (done.state === 'pending' || done.state === 'running') continue;
      expect(done).toMatchObject({ state: 'completed', error: null });
      break;
    }
  });

  it('an agent writing into the folder boocoder was started from fails its task, naming no host path', async () => {
    const repo = await repos.repo();
    const stray = join(decoy, 'stray.txt');
    try {
      const { done } = await runTask({ project: repo, input: `write ${stray} past review` });
      expect(done).toMatchObject({ state: 'failed', error_code: 'E_AGENT_WROTE_OUTSIDE_WORKTREE' });
      expect(done.error).toContain('1 new entr');
      expect(done.error).not.toContain(decoy);
      expect(done.error).not.toContain('stray.txt');
    } finally {
      await rm(stray, { force: true });
    }
  });
});
