/**
 * No doomed tasks, through the real MCP tools on PGlite and PostgreSQL: new_task refuses at once an
 * agent the registry knows is not installed or needs authentication (naming the config file as
 * $BOOCODER_HOME/config.json, never a host path), queues nothing; and once the binary changes
 * (installed, fingerprint no longer the stored one) the agent is probed again, not refused.
 */
import { chmod, mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

describeEachDatabase('new_task and an agent the registry knows cannot run', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let dir: string;
  let repos: TempRepos;

  /** An executable at `path` that runs `command` (shell words already quoted). */
  async function writeScript(path: string, command: string): Promise<void> {
    await writeFile(path, `#!/bin/sh\nexec ${command}\n`);
    await chmod(path, 0o755);
  }

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-doomed-')));
    await mkdir(join(dir, 'bin'));
    // An ACP agent that answers initialize and refuses session/new as ACP's auth_required.
    const sdk = pathToFileURL(
      createRequire(import.meta.url).resolve('@agentclientprotocol/sdk/unstable'),
    ).href;
    await writeFile(
      join(dir, 'auth-agent.mjs'),
      `import { Readable, Writable } from 'node:stream';
import * as acp from ${JSON.stringify(sdk)};
acp.agent({ name: 'auth-agent' })
  .onRequest(acp.methods.agent.initialize, () => ({
    protocolVersion: acp.PROTOCOL_VERSION,
    agentCapabilities: {},
    authMethods: [{ id: 'api-key', name: 'API key' }],
    agentInfo: { name: 'auth-agent', version: '1.0.0' },
  }))
  .onRequest(acp.methods.agent.session.new, () => { throw acp.RequestError.authRequired(); })
  .connect(acp.ndJsonStream(Writable.toWeb(process.stdout), Readable.toWeb(process.stdin)));
`,
    );
    await writeScript(
      join(dir, 'bin', 'authy-agent'),
      `${quote(process.execPath)} ${quote(join(dir, 'auth-agent.mjs'))}`,
    );
    const fixture = acpTestAgentSpec();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        defaultAgent: 'fixture',
        agents: {
          fixture: { command: fixture.command, args: fixture.args },
          ghost: { command: 'ghost-agent', args: [] },
          authy: { command: 'authy-agent', args: [] },
        },
      }),
    );
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: join(dir, 'config.json'),
      PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
    });
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tasksOf = async (agent: string) =>
    (await ctx.db.query('SELECT id FROM tasks WHERE agent = $1', [agent])).rows.length;

  it('refuses a known-missing or logged-out agent at once, and probes a changed binary again', async () => {
    const repo = await repos.repo();
    const { agents } = await callOk<{
      agents: { name: string; installed: boolean; needs_auth: boolean; fix: string | null }[];
    }>(client, 'probe_agents', {});
    const fixOf = (name: string) => agents.find((a) => a.name === name)?.fix;
    expect(fixOf('fixture')).toBeNull();
    expect(agents.find((a) => a.name === 'ghost')).toMatchObject({ installed: false });
    expect(agents.find((a) => a.name === 'authy')).toMatchObject({ installed: true, needs_auth: true });

    const missing = await callError(client, 'new_task', { project: repo, input: 'pid', agent: 'ghost' });
    expect(missing).toMatch(/^E_AGENT_NOT_FOUND/);
    expect(missing).toContain(fixOf('ghost'));
    expect(missing).toContain('$BOOCODER_HOME/config.json');
    const auth = await callError(client, 'new_task', { project: repo, input: 'pid', agent: 'authy' });
    expect(auth).toMatch(/^E_AGENT_NEEDS_AUTH/);
    expect(auth).toContain(fixOf('authy'));
    expect(auth).toContain('$BOOCODER_HOME/config.json');
    for (const text of [missing, auth]) {
      expect(text).not.toContain(boo.home);
      expect(text).not.toContain(dir);
    }
    expect(await tasksOf('ghost')).toBe(0);
    expect(await tasksOf('authy')).toBe(0);

    // Installed since the probe: the stored "not installed" is stale and must not be trusted.
    const fixture = acpTestAgentSpec();
    await writeScript(
      join(dir, 'bin', 'ghost-agent'),
      [fixture.command, ...fixture.args].map(quote).join(' '),
    );
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'write ghost.txt boo',
      agent: 'ghost',
    });
    const done = await callOk<{ state: string }>(client, 'get_task', { task_id: queued.task_id, wait_s: 55 });
    expect(done.state).toBe('completed');
    const { rows } = await ctx.db.query<{ install_path: string | null }>(
      'SELECT install_path FROM available_agents WHERE name = $1',
      ['ghost'],
    );
    expect(rows[0]?.install_path).toBe(join(dir, 'bin', 'ghost-agent'));
  });
});
