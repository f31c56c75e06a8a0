/**
 * probe_agents through a real MCP client: the fixture ACP agent (configured as `fixture`) is found,
 * handshaken and stored; a second call reuses the stored probe; refresh probes again. A fake agent
 * on a fake PATH (a script that notes every start, then runs the fixture agent) proves that a
 * reused probe runs nothing, and that an upgraded binary or `refresh` is run again.
 */
import { chmod, mkdir, mkdtemp, readFile, realpath, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface AgentRow {
  name: string;
  installed: boolean;
  install_path: string | null;
  found_via: string | null;
  supports_acp: boolean;
  needs_auth: boolean;
  version: string | null;
  last_probed_at: string;
  cached: boolean;
  acp: { agent_info?: { name?: string } } | null;
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

describeEachDatabase('probe_agents', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let dir: string;
  let binary: string;

  /** Writes the fake `counted-agent`: notes its arguments in `runs`, then acts as an ACP agent. */
  async function writeCountedAgent(path: string, version: string): Promise<void> {
    const fixture = acpTestAgentSpec();
    await writeFile(
      path,
      [
        '#!/bin/sh',
        `echo "$*" >> ${quote(join(dir, 'runs'))}`,
        `if [ "$1" = --version ]; then echo "counted-agent ${version}"; exit 0; fi`,
        `exec ${[fixture.command, ...fixture.args].map(quote).join(' ')}`,
        '',
      ].join('\n'),
    );
    await chmod(path, 0o755);
  }

  const runs = async () =>
    (await readFile(join(dir, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const probe = async (args: Record<string, unknown> = {}) => {
    const { agents } = await callOk<{ agents: AgentRow[] }>(client, 'probe_agents', args);
    return (name: string) => agents.find((a) => a.name === name);
  };

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-probe-tool-')));
    await mkdir(join(dir, 'bin'));
    binary = join(dir, 'bin', 'counted-agent');
    await writeCountedAgent(binary, '1.0.0');
    const fixture = acpTestAgentSpec();
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        defaultAgent: 'fixture',
        agents: {
          fixture: { command: fixture.command, args: fixture.args },
          counted: { command: 'counted-agent', args: ['--acp'], versionArgs: ['--version'] },
        },
      }),
    );
    boo = await startTestBoocoder(ctx.db, {
      BOOCODER_CONFIG: join(dir, 'config.json'),
      // Not the test runner's PATH: node_modules/.bin holds real agents, slow to probe cold.
      PATH: `${join(dir, 'bin')}:/usr/bin:/bin`,
    });
    client = await connectHttpClient(boo.http.url);
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds, handshakes and stores the configured agents, then reuses the stored probe', async () => {
    const first = await callOk<{ agents: AgentRow[] }>(client, 'probe_agents', {});
    const names = first.agents.map((a) => a.name);
    expect(names).toEqual(
      expect.arrayContaining(['claude', 'codex', 'counted', 'fixture', 'gemini', 'opencode', 'qwen']),
    );
    const fixture = first.agents.find((a) => a.name === 'fixture');
    expect(fixture).toMatchObject({ installed: true, supports_acp: true, needs_auth: false, cached: false });
    expect(fixture?.acp?.agent_info?.name).toBe('acp-test-agent');

    const cached = await probe();
    expect(cached('fixture')).toMatchObject({ cached: true, last_probed_at: fixture?.last_probed_at });

    const refreshed = await probe({ refresh: true });
    expect(refreshed('fixture')?.cached).toBe(false);
    expect(refreshed('fixture')?.last_probed_at).not.toBe(fixture?.last_probed_at);
  });

  it('does not run an unchanged binary again; runs it after an upgrade and on refresh', async () => {
    await probe({ refresh: true });
    const cold = await runs();
    // The version command and the ACP handshake.
    expect(cold.slice(-2).sort()).toEqual(['--acp', '--version']);
    const stored = await probe();
    expect(stored('counted')).toMatchObject({
      installed: true,
      install_path: binary,
      found_via: 'PATH',
      version: '1.0.0',
      supports_acp: true,
      cached: true,
    });
    expect(await runs()).toEqual(cold);

    // Touched: same file, new mtime.
    await utimes(binary, new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    expect((await probe())('counted')?.cached).toBe(false);
    expect(await runs()).toHaveLength(cold.length + 2);
    expect((await probe())('counted')?.cached).toBe(true);
    expect(await runs()).toHaveLength(cold.length + 2);

    // Replaced by an upgrade.
    await writeCountedAgent(join(dir, 'counted-agent.new'), '2.0.0');
    await rename(join(dir, 'counted-agent.new'), binary);
    expect((await probe())('counted')).toMatchObject({ version: '2.0.0', cached: false });
    expect(await runs()).toHaveLength(cold.length + 4);

    expect((await probe({ refresh: true }))('counted')).toMatchObject({ version: '2.0.0', cached: false });
    expect(await runs()).toHaveLength(cold.length + 6);
  });

  it('records a binary that disappeared as not installed', async () => {
    await probe();
    await rm(binary);
    expect((await probe())('counted')).toMatchObject({
      installed: false,
      install_path: null,
      version: null,
      supports_acp: false,
      cached: false,
    });
  });
});
