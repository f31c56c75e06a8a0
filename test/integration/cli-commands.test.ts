/**
 * The CLI as a person uses it: the real `boocoder` run from another folder on a fresh home.
 * `serve` and a client's `boocoder stdio` are one server (stdio finds the one serve started, and a
 * second serve names it); `status`, `logs` and `stop` show and stop it; every error is one line
 * with its code and what to do; an unknown word is an error listing the commands; `boocoder`
 * alone at a terminal explains itself on stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callOk, testHome } from '../helpers/boocoder-app.js';
import { BOOCODER_BIN, cleanUpAll, runCommand, stopDaemonsAndRemove } from '../helpers/clients.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** One error line: `boocoder: E_CODE: ...`, nothing else (no stack trace). */
const ONE_ERROR_LINE = /^boocoder: E_[A-Z_]+: [^\n]+\n$/;

describe('the boocoder CLI', () => {
  const repos: TempRepos = tempRepos();
  let home = '';
  let env: Record<string, string> = {};
  let elsewhere = '';
  let serve: ChildProcess | undefined;
  let client: Client | undefined;

  const boocoder = (...args: string[]) =>
    runCommand(process.execPath, [BOOCODER_BIN, ...args], { cwd: elsewhere, env, timeoutMs: 120_000 });

  beforeAll(async () => {
    const t = await testHome({ BOOCODER_LOG_LEVEL: 'info' });
    home = t.home;
    env = t.env;
    elsewhere = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-cli-cwd-')));
  });

  afterAll(() =>
    cleanUpAll([
      () => client?.close(),
      () => stopDaemonsAndRemove(home),
      () => rm(elsewhere, { recursive: true, force: true }),
      () => repos.cleanup(),
    ]),
  );

  it('says in one line that nothing runs, and how to start it', async () => {
    for (const command of ['status', 'stop']) {
      const r = await boocoder(command);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_ERROR_LINE);
      expect(r.stderr).toMatch(/E_NOT_RUNNING: .*start it with `boocoder serve`/);
    }
    const logs = await boocoder('logs');
    expect(logs.stderr).toMatch(ONE_ERROR_LINE);
  });

  it('refuses an unknown command, listing the commands, instead of starting stdio', async () => {
    for (const args of [['frob'], ['stdio', 'extra'], ['serve', '--bogus']]) {
      const r = await boocoder(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_ERROR_LINE);
      expect(r.stderr).toMatch(/E_USAGE/);
    }
    expect((await boocoder('frob')).stderr).toContain('serve, stdio, status, stop, logs, migrate');
    expect(await exists(join(home, 'daemon.json'))).toBe(false);
  });

  it('explains itself on stderr when started alone at a terminal', async () => {
    // script(1) gives the command a pseudo-terminal as stdin, as a shell would.
    const r = await runCommand('script', ['-qec', `${process.execPath} ${BOOCODER_BIN}`, '/dev/null'], {
      cwd: elsewhere,
      env,
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('speaks MCP (JSON-RPC) on stdin');
    expect(r.stdout).toContain('boocoder serve');
  });

  it('runs one server per home: stdio uses the one serve started, status shows it, a second serve names it, stop stops it', async () => {
    serve = spawn(process.execPath, [BOOCODER_BIN, 'serve'], { cwd: elsewhere, env, stdio: 'ignore' });
    while (!(await exists(join(home, 'daemon.json')))) {
      if (serve.exitCode !== null) throw new Error(`serve exited with ${serve.exitCode}`);
      await sleep(100);
    }
    const info = JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as {
      pid: number;
      url: string;
    };
    expect(info.pid).toBe(serve.pid);

    const second = await boocoder('serve');
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(ONE_ERROR_LINE);
    expect(second.stderr).toContain(
      `E_ALREADY_RUNNING: boocoder is already running for ${home} (pid ${info.pid}, ${info.url})`,
    );
    expect(second.stderr).toContain('`boocoder stop`');

    client = new Client({ name: 'cli-test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BOOCODER_BIN, 'stdio'],
        env,
        cwd: elsewhere,
        stderr: 'pipe',
      }),
    );
    const repo = await repos.repo();
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'sleep 600000\nwrite late.txt never',
    });
    // The task runs in serve's dispatcher: stdio started no server of its own.
    await callOk(client, 'get_task', { task_id: queued.task_id });
    let status = '';
    while (!status.includes(`running ${queued.task_id}`)) {
      const r = await boocoder('status');
      expect(r.code, r.stderr).toBe(0);
      status = r.stdout;
      await sleep(200);
    }
    expect(status).toContain(`is running (pid ${info.pid}, up `);
    expect(status).toContain(`url       ${info.url}`);
    expect(status).toContain('database  embedded');
    expect(status).toMatch(/tasks {5}0 pending, 1 running, 0 blocked/);
    expect(status).toMatch(new RegExp(`running ${queued.task_id} {2}fixture {2}for \\d+`));
    expect(status).toMatch(/warm {6}\d+ agent process/);

    const logs = await boocoder('logs');
    expect(logs.stdout).toContain('boocoder is serving');
    // -f prints what is there and then what comes: the status request above, and the stop below.
    const follow = spawn(process.execPath, [BOOCODER_BIN, 'logs', '-f'], {
      cwd: elsewhere,
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let followed = '';
    follow.stdout.on('data', (chunk: Buffer) => {
      followed += chunk.toString('utf8');
    });
    const followEnded = new Promise((resolve) => follow.once('exit', resolve));

    const stopped = await boocoder('stop');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('stopped');
    expect(serve.exitCode ?? serve.signalCode).not.toBeNull();
    expect(await exists(join(home, 'daemon.json'))).toBe(false);
    while (!followed.includes('"msg":"stopped"')) {
      if (follow.exitCode !== null) throw new Error(`logs -f exited: ${followed}`);
      await sleep(100);
    }
    expect(followed).toContain('boocoder is serving');
    follow.kill('SIGTERM');
    await followEnded;
    // The running task was handed back to the queue, not failed: the shutdown's grace, then release.
    const log = await readFile(join(home, 'daemon.log'), 'utf8');
    expect(log).toContain('"msg":"stopped"');
  }, 240_000);
});
