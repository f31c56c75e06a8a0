/**
 * The REAL opencode through the ACP driver and the probe, with the scripted model server: model
 * selection per task, and what the handshake learns from real installed agents.
 */
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAcpTask } from '../../src/agents/acp/driver.js';
import { buildAgentEnv } from '../../src/agents/agent-env.js';
import { type AgentLaunchSpec, resolveLaunchSpec } from '../../src/agents/launch-specs.js';
import { probeAgents } from '../../src/agents/probe.js';
import { BoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';
import {
  type FakeUserHome,
  fakeUserHome,
  OTHER_MODEL,
  opencodeSpec,
} from '../helpers/agents-real-opencode.js';

/** Real agents start slowly on a loaded CI machine: a bound, not a timing assertion. */
const AGENT_TIMEOUT_MS = 45_000;

let models: ModelServer;
let user: FakeUserHome;
let boocoderHome: string;
let worktree: string;
let spec: AgentLaunchSpec;

beforeAll(async () => {
  models = await startModelServer();
  user = await fakeUserHome();
  boocoderHome = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-real-acp-')));
  worktree = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-real-wt-')));
  spec = opencodeSpec(models.baseUrl);
});

afterAll(async () => {
  await models?.close();
  await user?.cleanup();
  for (const dir of [boocoderHome, worktree]) if (dir) await rm(dir, { recursive: true, force: true });
});

const envFor = (s: AgentLaunchSpec) =>
  buildAgentEnv({
    spec: s,
    home: boocoderHome,
    childEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.path },
  });

describe('the real opencode through the ACP driver', () => {
  it("runs the task on the task's model, chosen through the session's model config option", async () => {
    const before = models.requests.length;
    const result = await runAcpTask({
      spec,
      cwd: worktree,
      prompt: 'create model.txt with content picked',
      env: envFor(spec),
      model: OTHER_MODEL,
      timeoutMs: AGENT_TIMEOUT_MS,
      logger: silentLogger,
    });
    expect(result.stopReason).toBe('end_turn');
    expect(await readFile(join(worktree, 'model.txt'), 'utf8')).toBe('picked');
    // The turn's requests (those offering tools) went to the chosen model; only titling uses small_model.
    const turn = models.requests.slice(before).filter((r) => r.toolNames.length > 0);
    expect(turn.length).toBeGreaterThanOrEqual(2);
    expect(new Set(turn.map((r) => r.model))).toEqual(new Set(['other-model']));
    expect(result.usage?.inputTokens).toBeGreaterThan(0);
    expect(result.agentInfo).toMatchObject({ name: 'OpenCode' });
  });

  it('fails with E_INVALID_INPUT, naming the models on offer, for a model the agent lacks', async () => {
    const err = await runAcpTask({
      spec,
      cwd: worktree,
      prompt: 'create never.txt with content x',
      env: envFor(spec),
      model: 'scripted/no-such-model',
      timeoutMs: AGENT_TIMEOUT_MS,
      logger: silentLogger,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BoocoderError);
    expect((err as BoocoderError).code).toBe('E_INVALID_INPUT');
    expect((err as BoocoderError).message).toMatch(
      /no model "scripted\/no-such-model"; it offers: .*scripted\/other-model/,
    );
    await expect(readFile(join(worktree, 'never.txt'))).rejects.toThrow(/ENOENT/);
  });
});

describe('probing the real installed agents', () => {
  it('handshakes with opencode, and tells a CLI without ACP and a missing claude-agent-acp apart', async () => {
    const claudeCli = resolve(fileURLToPath(new URL('../../node_modules/.bin/claude', import.meta.url)));
    const specs: AgentLaunchSpec[] = [
      { ...spec, versionArgs: ['--version'] },
      // Claude Code itself is installed, but speaks ACP only through claude-agent-acp.
      { name: 'claude-cli', label: 'Claude Code CLI', command: claudeCli, args: [], env: {} },
      resolveLaunchSpec('claude'),
    ];
    const byName = async (timeoutMs: number, only: string[]) =>
      (
        await probeAgents({
          specs: specs.filter((s) => only.includes(s.name)),
          pathEnv: '/usr/bin:/bin',
          homeDir: user.path,
          handshake: { env: envFor, timeoutMs },
        })
      ).reduce<Record<string, Awaited<ReturnType<typeof probeAgents>>[number]>>((acc, r) => {
        acc[r.name] = r;
        return acc;
      }, {});
    const [real, other] = await Promise.all([
      byName(AGENT_TIMEOUT_MS, ['opencode', 'claude']),
      // No ACP answer is expected from the plain CLI: a short box is enough to show it.
      byName(3000, ['claude-cli']),
    ]);
    expect(real.opencode).toMatchObject({ supportsAcp: true, supportsMcpClient: true, needsAuth: false });
    expect(real.opencode?.version).toMatch(/^1\.18\.\d+/);
    expect(real.opencode?.acp).toMatchObject({
      speaksAcp: true,
      loadSession: true,
      agentInfo: { name: 'OpenCode' },
      mcpCapabilities: { http: true, sse: true },
    });
    expect(real.opencode?.acp?.models.map((m) => m.id)).toContain(OTHER_MODEL);
    expect(real.opencode?.acp?.modes.map((m) => m.id)).toEqual(expect.arrayContaining(['build', 'plan']));
    expect(real.opencode?.acp?.authMethods.length).toBeGreaterThan(0);
    expect(real.claude).toMatchObject({
      installPath: null,
      supportsAcp: false,
      error: 'claude-agent-acp not found',
    });
    expect(other['claude-cli']).toMatchObject({ supportsAcp: false, needsAuth: false });
    expect(other['claude-cli']?.error).toMatch(/^no (ACP|answer to ACP initialize)/);
  });
});
