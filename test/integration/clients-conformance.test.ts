/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, run on Node 22) against
 * boocoder's streamable-HTTP endpoint. Only the scenarios that apply to any server are run: the
 * others call fixture tools named `test_*`, and some of those pass falsely on an unknown-tool
 * error (tools-call-simple-text, tools-call-error), so they would prove nothing here.
 *
 * The suite's exit code is not trusted alone: each scenario's checks.json is read and every check
 * it names must be there with status SUCCESS.
 */
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHttpClient } from '../helpers/boocoder-app.js';
import { type ClientTestServers, REPO_ROOT, runCommand, startClientTestServers } from '../helpers/clients.js';
import { ensureNode22 } from '../helpers/node22.js';

const CONFORMANCE = join(
  REPO_ROOT,
  'node_modules',
  '@modelcontextprotocol',
  'conformance',
  'dist',
  'index.js',
);

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | string;
  errorMessage?: string;
  details?: Record<string, unknown>;
}

interface ScenarioRun {
  code: number | null;
  checks: Check[];
  output: string;
}

/** Each applicable scenario and the checks it must report as SUCCESS. */
const APPLICABLE: Record<string, string[]> = {
  'server-initialize': ['server-initialize'],
  ping: ['ping'],
  'tools-list': ['tools-list'],
  'logging-set-level': ['logging-set-level'],
  'server-sse-multiple-streams': ['server-accepts-multiple-post-streams', 'server-sse-streams-functional'],
  'dns-rebinding-protection': ['localhost-host-rebinding-rejected', 'localhost-host-valid-accepted'],
  'resources-list': ['resources-list'],
};
/** They subscribe to the suite's own fixture resource, which boocoder does not have (see the last test). */
const SUBSCRIPTION_SCENARIOS = ['resources-subscribe', 'resources-unsubscribe'];

describe('MCP conformance suite against the HTTP endpoint', () => {
  let servers: ClientTestServers | undefined;
  let outDir: string | undefined;
  const runs = new Map<string, ScenarioRun>();

  const runScenario = async (node22: string, url: string, scenario: string): Promise<ScenarioRun> => {
    const dir = join(outDir as string, scenario);
    const result = await runCommand(
      node22,
      [CONFORMANCE, 'server', '--url', url, '--scenario', scenario, '-o', dir],
      { cwd: outDir as string, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: 90_000 },
    );
    // -o writes <dir>/server-<scenario>-<timestamp>/checks.json.
    const checks: Check[] = [];
    for (const sub of await readdir(dir).catch(() => [])) {
      const raw = await readFile(join(dir, sub, 'checks.json'), 'utf8').catch(() => '[]');
      checks.push(...(JSON.parse(raw) as Check[]));
    }
    return { code: result.code, checks, output: result.stdout + result.stderr };
  };

  beforeAll(async () => {
    const [node22, started, dir] = await Promise.all([
      ensureNode22(),
      startClientTestServers(),
      mkdtemp(join(tmpdir(), 'boocoder-conformance-')).then((d) => realpath(d)),
    ]);
    servers = started;
    outDir = dir;
    // The scenarios are independent (each opens its own session): run them side by side.
    const names = [...Object.keys(APPLICABLE), ...SUBSCRIPTION_SCENARIOS];
    const results = await Promise.all(names.map((name) => runScenario(node22, started.openUrl, name)));
    names.forEach((name, i) => {
      runs.set(name, results[i] as ScenarioRun);
    });
  }, 300_000);

  afterAll(async () => {
    await servers?.close();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it.each(Object.entries(APPLICABLE))('%s passes', (scenario, expectedIds) => {
    const run = runs.get(scenario) as ScenarioRun;
    const summary = run.checks.map(
      (c) => `${c.id}: ${c.status}${c.errorMessage ? ` (${c.errorMessage})` : ''}`,
    );
    // Every check the suite reported passed, nothing only warned...
    for (const check of run.checks) {
      expect(check.status === 'SUCCESS' || check.status === 'INFO', summary.join('\n')).toBe(true);
    }
    // ...and the checks that carry the verdict were really made (an empty checks.json passes nothing).
    for (const id of expectedIds) {
      expect(run.checks.find((c) => c.id === id)?.status, `${id} in\n${summary.join('\n')}`).toBe('SUCCESS');
    }
    expect(run.code, run.output).toBe(0);
  });

  it('tools-list saw boocoder’s own tools', () => {
    const check = runs.get('tools-list')?.checks.find((c) => c.id === 'tools-list');
    expect(check?.details?.tools).toEqual(
      expect.arrayContaining([
        'new_task',
        'get_task',
        'list_pending_changes',
        'apply_change',
        'probe_agents',
      ]),
    );
  });

  it('resources-subscribe/unsubscribe: subscribe is advertised and served, for boocoder resources only', async () => {
    // The scenarios subscribe to test://watched-resource, a resource of the suite's own fixture
    // server: boocoder refuses it as invalid params (it serves the method: not -32601).
    // Subscriptions to boocoder's own resources are tested in subscriptions.test.ts.
    const client = await connectHttpClient((servers as ClientTestServers).openUrl);
    try {
      expect(client.getServerCapabilities()?.resources?.subscribe).toBe(true);
      await client.subscribeResource({ uri: 'boocoder://inbox' });
      await client.unsubscribeResource({ uri: 'boocoder://inbox' });
    } finally {
      await client.close();
    }
    for (const scenario of SUBSCRIPTION_SCENARIOS) {
      const run = runs.get(scenario) as ScenarioRun;
      const errors = run.checks.map((c) => c.errorMessage).join('\n');
      expect(errors, scenario).toContain('cannot be subscribed to');
      expect(errors, scenario).not.toContain('Method not found');
    }
  });
});
