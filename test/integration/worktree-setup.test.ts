/**
 * Worktrees ready to work in, through a real MCP client and the ACP test agent, on both databases:
 * the project's setup command finishes before the agent starts (and runs once per worktree), the
 * checkout's ignored files named by .worktreeinclude are copied (not linked), two live worktrees
 * get different ports, a failing setup fails the task with its output, and a command written in
 * the repository does not run until a human trusts it with `boocoder trust`.
 */
import { execFile } from 'node:child_process';
import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { followUp, runTasksToEnd, runTaskToEnd } from '../helpers/agent-e2e.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot, type TempRepos, tempRepos, writeFiles } from '../helpers/worktrees-temp-repo.js';

const BIN = resolve(import.meta.dirname, '../../bin/boocoder.js');

interface Done {
  state: string;
  error: string | null;
  error_code: string | null;
  pending_changes: number;
  worktree_path: string | null;
}

describeEachDatabase('worktrees ready to work in', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;
  let failing: string;
  let untrusted: string;

  beforeAll(async () => {
    repos = tempRepos();
    repo = await repos.repo({
      'README.md': '# demo\n',
      '.gitignore': '.env\nsecret.key\nlog.txt\nports.txt\nagent-port.txt\nnode_modules/\n',
      '.worktreeinclude': '.env\nnode_modules/\n',
    });
    // Ignored and included (copied); ignored, not included; untracked, not ignored (the user's WIP).
    await writeFiles(repo, {
      '.env': 'TOKEN=abc\n',
      'node_modules/dep/index.js': 'module.exports = 1;\n',
      'secret.key': 'not for agents\n',
      'notes.txt': 'work in progress\n',
    });
    failing = await repos.repo({ 'README.md': '# failing\n' });
    untrusted = await repos.repo({
      '.gitignore': 'pwned\n',
      '.boocoder.json': JSON.stringify({ setup: 'echo ran > pwned' }),
    });
    const spec = acpTestAgentSpec();
    const configFile = join(await repos.dir(), 'config.json');
    const setup =
      'sleep 1 && printf "setup\\n" >> log.txt && printf "%s %s %s" "$PORT" "$PORT_RANGE_START" "$PORT_RANGE_END" > ports.txt' +
      // Tracked edits and unignored files of the setup are not the agent's changes: reset.
      ' && echo scratch > scratch.txt && echo changed > README.md';
    await writeFile(
      configFile,
      JSON.stringify({
        defaultAgent: 'fixture',
        agents: { fixture: { command: spec.command, args: spec.args } },
        projects: { [repo]: { setup }, [failing]: { setup: 'echo boom; exit 3' } },
      }),
    );
    boo = await startTestBoocoder(ctx.db, { BOOCODER_CONFIG: configFile });
    client = await connectHttpClient(boo.http.url);
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  it('runs setup before the agent, once per worktree, with a port block of its own per live worktree', async () => {
    const before = await snapshot(repo);
    const runs = await runTasksToEnd(client, [
      { project: repo, input: 'append log.txt agent\\n\nappend-env agent-port.txt PORT' },
      { project: repo, input: 'append log.txt agent\\n\nappend-env agent-port.txt PORT' },
    ]);
    const ports: number[][] = [];
    for (const { done } of runs as unknown as { done: Done }[]) {
      expect(done).toMatchObject({ state: 'completed', pending_changes: 0 });
      const wt = done.worktree_path as string;
      // The agent appended after the setup's line: it waited for the setup to finish.
      expect(await readFile(join(wt, 'log.txt'), 'utf8')).toBe('setup\nagent\n');
      ports.push((await readFile(join(wt, 'ports.txt'), 'utf8')).split(' ').map(Number));
      // The agent itself runs with the same PORT as its worktree's setup.
      expect(await readFile(join(wt, 'agent-port.txt'), 'utf8')).toBe(String(ports.at(-1)?.[0]));
      // The setup's tracked edit and unignored file were reset before the agent started.
      expect(await readFile(join(wt, 'README.md'), 'utf8')).toBe('# demo\n');
      await expect(stat(join(wt, 'scratch.txt'))).rejects.toThrow(/ENOENT/);
    }
    const [a, b] = ports as [number[], number[]];
    expect(a[0]).toBe(a[1]);
    expect(a[2]).toBe((a[1] as number) + 9);
    expect(b[2]).toBe((b[1] as number) + 9);
    // Disjoint blocks: two dev servers in the two worktrees cannot collide.
    expect((a[2] as number) < (b[1] as number) || (b[2] as number) < (a[1] as number)).toBe(true);

    // A follow-up in the same session: the worktree is ready, the setup does not run again.
    const first = runs[0]?.queued;
    if (!first) throw new Error('no first task');
    const again = await runTaskToEnd(client, {
      project: repo,
      input: 'append log.txt again\\n',
      ...followUp(first),
    });
    expect(again.done.state).toBe('completed');
    const wt = (again.done as unknown as Done).worktree_path as string;
    expect(await readFile(join(wt, 'log.txt'), 'utf8')).toBe('setup\nagent\nagain\n');
    expect(await snapshot(repo)).toEqual(before);
  });

  it('copies the ignored files .worktreeinclude names, as copies, and nothing else', async () => {
    const { done } = await runTaskToEnd(client, { project: repo, input: 'say hi' });
    const wt = (done as unknown as Done).worktree_path as string;
    for (const rel of ['.env', 'node_modules/dep/index.js']) {
      const info = await lstat(join(wt, rel));
      // A copy, not a link: writing it cannot reach the user's checkout.
      expect(info.isFile()).toBe(true);
      expect(info.nlink).toBe(1);
      expect(await readFile(join(wt, rel), 'utf8')).toBe(await readFile(join(repo, rel), 'utf8'));
    }
    await expect(stat(join(wt, 'secret.key'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(wt, 'notes.txt'))).rejects.toThrow(/ENOENT/);
  });

  it('fails the task with the tail of a failing setup, before the agent starts', async () => {
    const { done } = await runTaskToEnd(client, { project: failing, input: 'write by-agent.txt x' });
    const d = done as unknown as Done;
    expect(d).toMatchObject({ state: 'failed', error_code: 'E_SETUP_FAILED', pending_changes: 0 });
    expect(d.error).toContain('exit code 3');
    expect(d.error).toContain('boom');
    await expect(stat(join(d.worktree_path as string, 'by-agent.txt'))).rejects.toThrow(/ENOENT/);
  });

  it("does not run the repository's setup until a human trusts it, and asks again when it changes", async () => {
    const refused = (await runTaskToEnd(client, { project: untrusted, input: 'say hi' }))
      .done as unknown as Done;
    expect(refused).toMatchObject({ state: 'failed', error_code: 'E_UNTRUSTED_COMMAND' });
    expect(refused.error).toContain(`boocoder trust ${untrusted}`);
    await expect(stat(join(refused.worktree_path as string, 'pwned'))).rejects.toThrow(/ENOENT/);

    // The human trusts it with the CLI (never a tool call).
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'trust', untrusted], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: boo.home, BOOCODER_HOME: boo.home },
    });
    expect(stdout).toContain('setup: echo ran > pwned');
    const trusted = (await runTaskToEnd(client, { project: untrusted, input: 'say hi' }))
      .done as unknown as Done;
    expect(trusted.state).toBe('completed');
    expect(await readFile(join(trusted.worktree_path as string, 'pwned'), 'utf8')).toBe('ran\n');

    await writeFile(join(untrusted, '.boocoder.json'), JSON.stringify({ setup: 'echo changed > pwned' }));
    const changed = (await runTaskToEnd(client, { project: untrusted, input: 'say hi' }))
      .done as unknown as Done;
    expect(changed).toMatchObject({ state: 'failed', error_code: 'E_UNTRUSTED_COMMAND' });
    await expect(stat(join(changed.worktree_path as string, 'pwned'))).rejects.toThrow(/ENOENT/);
    const tasks = await callOk<{ tasks: unknown[] }>(client, 'list_tasks', {});
    expect(tasks.tasks.length).toBeGreaterThan(0);
  });
});
