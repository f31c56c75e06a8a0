/**
 * probe_agents through a real MCP client: the fixture ACP agent (configured as `fixture`) is found,
 * handshaken and stored; a second call reuses the stored probe; refresh probes again.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface AgentRow {
  name: string;
  installed: boolean;
  supports_acp: boolean;
  needs_auth: boolean;
  version: string | null;
  last_probed_at: string;
  acp: { agent_info?: { name?: string } } | null;
}

describeEachDatabase('probe_agents', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
  });
  afterAll(async () => {
    await client?.close();
    await boo?.close();
  });

  it('finds, handshakes and stores the configured agents, then reuses the stored probe', async () => {
    const first = await callOk<{ agents: AgentRow[] }>(client, 'probe_agents', {});
    const names = first.agents.map((a) => a.name);
    expect(names).toEqual(
      expect.arrayContaining(['claude', 'codex', 'fixture', 'gemini', 'opencode', 'qwen']),
    );
    const fixture = first.agents.find((a) => a.name === 'fixture');
    expect(fixture).toMatchObject({ installed: true, supports_acp: true, needs_auth: false });
    expect(fixture?.acp?.agent_info?.name).toBe('acp-test-agent');

    const cached = await callOk<{ agents: AgentRow[] }>(client, 'probe_agents', {});
    expect(cached.agents.find((a) => a.name === 'fixture')?.last_probed_at).toBe(fixture?.last_probed_at);

    const refreshed = await callOk<{ agents: AgentRow[] }>(client, 'probe_agents', { refresh: true });
    expect(refreshed.agents.find((a) => a.name === 'fixture')?.last_probed_at).not.toBe(
      fixture?.last_probed_at,
    );
  });
});
