/**
 * What boocoder does for Gemini CLI in particular: its usage from PromptResponse._meta.quota, and
 * the settings.json (auth method, no usage statistics, no self-update) in its isolated home.
 */
import { mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AcpTurnRecord, quotaUsageOf } from '../../src/agents/acp/turn-record.js';
import { buildAgentEnv, planAgentEnv } from '../../src/agents/agent-env.js';
import {
  chooseGeminiAuthType,
  planGeminiSettings,
  writeGeminiSettings,
} from '../../src/agents/gemini-settings.js';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';

const spec = (name: string, env: Record<string, string> = {}): AgentLaunchSpec => ({
  name,
  label: name,
  command: name,
  args: [],
  env,
});

describe("Gemini's usage", () => {
  // What gemini-cli 0.61 sends at the end of a turn with one tool call.
  const meta = {
    quota: {
      token_count: { input_tokens: 240, output_tokens: 60 },
      model_usage: [{ model: 'gemini-3.8-flash', token_count: { input_tokens: 120, output_tokens: 30 } }],
    },
  };

  it('is read from _meta.quota.token_count when the response has no usage', () => {
    expect(quotaUsageOf(meta)).toEqual({ inputTokens: 240, outputTokens: 60, totalTokens: 300 });
    expect(new AcpTurnRecord().usage({ stopReason: 'end_turn', _meta: meta })).toEqual({
      inputTokens: 240,
      outputTokens: 60,
    });
  });

  it('prefers the standard usage field when an agent sends both', () => {
    const usage = { inputTokens: 5, outputTokens: 6, totalTokens: 11 };
    expect(new AcpTurnRecord().usage({ stopReason: 'end_turn', usage, _meta: meta })).toEqual({
      inputTokens: 5,
      outputTokens: 6,
    });
  });

  it('ignores malformed or hostile _meta', () => {
    for (const bad of [undefined, null, 'x', [], { quota: [] }, { quota: { token_count: 'lots' } }])
      expect(quotaUsageOf(bad)).toBeUndefined();
    expect(
      quotaUsageOf({ quota: { token_count: { input_tokens: -4, output_tokens: Number.POSITIVE_INFINITY } } }),
    ).toEqual({ inputTokens: 0, outputTokens: 0, totalTokens: 0 });
    expect(quotaUsageOf({ quota: { token_count: { input_tokens: '9', output_tokens: 2.6 } } })).toEqual({
      inputTokens: 0,
      outputTokens: 3,
      totalTokens: 3,
    });
    // A cancelled Gemini turn carries no _meta at all.
    expect(new AcpTurnRecord().usage({ stopReason: 'cancelled' })).toBeUndefined();
  });
});

describe("Gemini's settings", () => {
  it("chooses the auth method in Gemini's own order, then a linked Google login", () => {
    expect(chooseGeminiAuthType({ GOOGLE_GENAI_USE_GCA: 'true', GEMINI_API_KEY: 'k' }, false)).toBe(
      'oauth-personal',
    );
    expect(chooseGeminiAuthType({ GOOGLE_GENAI_USE_VERTEXAI: 'true', GEMINI_API_KEY: 'k' }, true)).toBe(
      'vertex-ai',
    );
    expect(chooseGeminiAuthType({ GEMINI_API_KEY: 'k' }, true)).toBe('gemini-api-key');
    expect(chooseGeminiAuthType({}, true)).toBe('oauth-personal');
    expect(chooseGeminiAuthType({ GEMINI_API_KEY: '' }, false)).toBeUndefined();
  });

  it("sets boocoder's keys and keeps everything else the agent wrote", () => {
    const existing = {
      security: { auth: { selectedType: 'vertex-ai' }, folderTrust: { enabled: true } },
      ui: 1,
    };
    expect(planGeminiSettings(existing, 'gemini-api-key')).toEqual({
      security: { auth: { selectedType: 'gemini-api-key' }, folderTrust: { enabled: true } },
      ui: 1,
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    });
    // No method to choose: the agent's own choice stays.
    expect(planGeminiSettings(existing, undefined).security).toEqual(existing.security);
    expect(planGeminiSettings('not json', undefined)).toEqual({
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    });
  });
});

describe("Gemini's isolated home", () => {
  let base: string;
  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-gemini-home-')));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('is where the settings go, and only when Gemini really uses it', () => {
    const user = { HOME: '/home/me' };
    expect(planAgentEnv({ spec: spec('gemini'), home: '/b', childEnv: user }).geminiHome).toBe(
      '/b/agents/gemini',
    );
    expect(
      planAgentEnv({
        spec: spec('gemini', { GEMINI_CLI_HOME: '/b/agents/gemini/g' }),
        home: '/b',
        childEnv: user,
      }).geminiHome,
    ).toBe('/b/agents/gemini/g');
    // The user pointed Gemini at their own home: their settings are not boocoder's to write.
    const elsewhere: Record<string, string>[] = [
      { HOME: '/home/me' },
      { GEMINI_CLI_HOME: '/home/me' },
      { GEMINI_CLI_HOME: '/b/agents/geminix' },
    ];
    for (const env of elsewhere)
      expect(
        planAgentEnv({ spec: spec('gemini', env), home: '/b', childEnv: user }).geminiHome,
      ).toBeUndefined();
    expect(planAgentEnv({ spec: spec('qwen'), home: '/b', childEnv: user }).geminiHome).toBeUndefined();
  });

  it("gets settings.json selecting the user's linked Google login, private to the user", async () => {
    const userHome = join(base, 'user');
    await mkdir(join(userHome, '.gemini'), { recursive: true });
    await writeFile(join(userHome, '.gemini', 'oauth_creds.json'), '{}');
    const env = buildAgentEnv({
      spec: spec('gemini'),
      home: join(base, 'boo'),
      childEnv: { HOME: userHome },
    });
    const file = join(base, 'boo', 'agents', 'gemini', '.gemini', 'settings.json');
    expect(env.HOME).toBe(join(base, 'boo', 'agents', 'gemini'));
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      security: { auth: { selectedType: 'oauth-personal' } },
      privacy: { usageStatisticsEnabled: false },
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // Nothing was written into the user's own Gemini directory.
    await expect(stat(join(userHome, '.gemini', 'settings.json'))).rejects.toThrow(/ENOENT/);
  });

  it('switches to the API key once one is set, keeps the rest, and leaves an unchanged file alone', async () => {
    const dir = join(base, '.gemini');
    await mkdir(dir);
    await writeFile(
      join(dir, 'settings.json'),
      JSON.stringify({ security: { auth: { selectedType: 'oauth-personal' } }, model: { name: 'm' } }),
    );
    writeGeminiSettings(base, { GEMINI_API_KEY: 'k' });
    const first = await stat(join(dir, 'settings.json'));
    expect(JSON.parse(await readFile(join(dir, 'settings.json'), 'utf8'))).toMatchObject({
      security: { auth: { selectedType: 'gemini-api-key' } },
      model: { name: 'm' },
    });
    writeGeminiSettings(base, { GEMINI_API_KEY: 'k' });
    // Written by rename: an unchanged inode means it was not rewritten.
    expect((await stat(join(dir, 'settings.json'))).ino).toBe(first.ino);
  });
});
