/**
 * The probe's ACP handshake against fake agents: a real ACP agent (the test fixture), one that
 * demands authentication, a binary that is no ACP agent at all, and one that hangs with a child.
 * "Needs authentication" must come out distinct from "no ACP", and nothing may be left running.
 */
import { chmod, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';
import { probeAgents } from '../../src/agents/probe.js';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';

let root: string;
const pidFiles: string[] = [];

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-handshake-')));
});

afterEach(async () => {
  for (const file of pidFiles.splice(0)) {
    const pid = Number(await readFile(file, 'utf8').catch(() => ''));
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  await rm(root, { recursive: true, force: true });
});

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const probe = (specs: AgentLaunchSpec[], timeoutMs = 20_000) =>
  probeAgents({
    specs,
    pathEnv: '/usr/bin:/bin',
    homeDir: root,
    env,
    handshake: { env: () => env, timeoutMs },
  });

/** An ACP agent that answers initialize and refuses session/new as ACP's auth_required. */
async function authRequiredAgent(): Promise<AgentLaunchSpec> {
  const sdk = pathToFileURL(createRequire(import.meta.url).resolve('@agentclientprotocol/sdk/unstable')).href;
  const file = join(root, 'auth-agent.mjs');
  await writeFile(
    file,
    `import { Readable, Writable } from 'node:stream';
import * as acp from ${JSON.stringify(sdk)};
acp.agent({ name: 'auth-agent' })
  .onRequest(acp.methods.agent.initialize, () => ({
    protocolVersion: acp.PROTOCOL_VERSION,
    agentCapabilities: { mcpCapabilities: { http: true, sse: false } },
    authMethods: [{ id: 'api-key', name: 'API key' }],
    agentInfo: { name: 'auth-agent', version: '4.5.6' },
  }))
  .onRequest(acp.methods.agent.session.new, () => { throw acp.RequestError.authRequired(); })
  .connect(acp.ndJsonStream(Writable.toWeb(process.stdout), Readable.toWeb(process.stdin)));
`,
  );
  return { name: 'authy', label: 'authy', command: process.execPath, args: [file], env: {} };
}

async function script(name: string, body: string): Promise<string> {
  const file = join(root, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

describe('probe ACP handshake', () => {
  it('records agent info, auth methods, MCP support, modes and commands of a working ACP agent', async () => {
    const [result] = await probe([acpTestAgentSpec()]);
    expect(result).toMatchObject({
      supportsAcp: true,
      supportsMcpClient: true,
      needsAuth: false,
      version: '1.0.0',
    });
    expect(result?.acp).toMatchObject({
      speaksAcp: true,
      agentInfo: { name: 'acp-test-agent', version: '1.0.0' },
      mcpCapabilities: { http: false, sse: false },
    });
    expect(result?.error).toBeUndefined();
  });

  it('records "needs authentication" apart from "no ACP"', async () => {
    const [result] = await probe([await authRequiredAgent()]);
    expect(result).toMatchObject({
      supportsAcp: true,
      needsAuth: true,
      version: '4.5.6',
      error: 'needs authentication',
    });
    expect(result?.acp?.authMethods).toEqual([{ id: 'api-key', name: 'API key' }]);
  });

  it('says "no ACP" for a binary that prints something else and exits', async () => {
    const path = await script('not-acp', 'echo "usage: not-acp [options]"');
    const [result] = await probe([
      { name: 'plain', label: 'plain', command: path, args: ['--acp'], env: {} },
    ]);
    expect(result).toMatchObject({
      installPath: path,
      supportsAcp: false,
      supportsMcpClient: false,
      needsAuth: false,
    });
    expect(result?.error).toMatch(/^no ACP/);
  });

  it('time-boxes a binary that never answers and kills its whole process group', async () => {
    const pidFile = join(root, 'child.pid');
    pidFiles.push(pidFile);
    const path = await script('hangs', `sleep 600 & echo $! > "${pidFile}"; wait`);
    const [result] = await probe([{ name: 'hang', label: 'hang', command: path, args: [], env: {} }], 1500);
    expect(result).toMatchObject({
      supportsAcp: false,
      needsAuth: false,
      error: 'no answer to ACP initialize within 1500 ms',
    });
    const child = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(child, 0)).toThrow(/ESRCH/);
  });
});
