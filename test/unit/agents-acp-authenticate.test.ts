/**
 * When boocoder runs an agent's pre-session `authenticate` step (acp-authenticate.ts): only for the
 * spec's advertised method, only with its variables set, and never through a linked user login
 * (codex-acp would write the API key over the user's own ChatGPT login through the symlink).
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InitializeResponse } from '@agentclientprotocol/sdk/unstable';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseAuthMethod } from '../../src/agents/acp/authenticate.js';
import { resolveLaunchSpec } from '../../src/agents/launch-specs.js';

// codex-acp 0.16's initialize answer, trimmed to its auth methods.
const init = {
  protocolVersion: 1,
  authMethods: [
    { id: 'chatgpt', name: 'Login with ChatGPT' },
    { type: 'env_var', id: 'codex-api-key', name: 'Use CODEX_API_KEY', vars: [{ name: 'CODEX_API_KEY' }] },
    { type: 'env_var', id: 'openai-api-key', name: 'Use OPENAI_API_KEY', vars: [{ name: 'OPENAI_API_KEY' }] },
  ],
} as unknown as InitializeResponse;

describe('the pre-session auth step', () => {
  let dir: string;
  let codexHome: string;
  const codex = resolveLaunchSpec('codex');
  beforeEach(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-auth-')));
    codexHome = join(dir, '.codex');
    await mkdir(codexHome);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('authenticates codex with the API key when the agent advertises the method and the key is set', () => {
    expect(codex.authMethod).toBe('openai-api-key');
    expect(chooseAuthMethod(codex, init, { OPENAI_API_KEY: 'k', CODEX_HOME: codexHome })).toBe(
      'openai-api-key',
    );
  });

  it('skips it without the key, when the method is not advertised, and for agents with no such step', () => {
    expect(chooseAuthMethod(codex, init, { OPENAI_API_KEY: '', CODEX_HOME: codexHome })).toBeUndefined();
    const noMethods = { protocolVersion: 1, authMethods: [] } as unknown as InitializeResponse;
    expect(chooseAuthMethod(codex, noMethods, { OPENAI_API_KEY: 'k' })).toBeUndefined();
    expect(chooseAuthMethod(resolveLaunchSpec('opencode'), init, { OPENAI_API_KEY: 'k' })).toBeUndefined();
  });

  it("never authenticates through a linked user login: the key would overwrite the user's own login", async () => {
    const userLogin = join(dir, 'user-auth.json');
    await writeFile(userLogin, '{"auth_mode":"chatgpt"}');
    await symlink(userLogin, join(codexHome, 'auth.json'));
    expect(chooseAuthMethod(codex, init, { OPENAI_API_KEY: 'k', CODEX_HOME: codexHome })).toBeUndefined();
  });

  it('authenticates again over a login file of its own (a regular file, e.g. an earlier key)', async () => {
    await writeFile(join(codexHome, 'auth.json'), '{"auth_mode":"apikey"}');
    expect(chooseAuthMethod(codex, init, { OPENAI_API_KEY: 'k', CODEX_HOME: codexHome })).toBe(
      'openai-api-key',
    );
  });

  it('keeps the step when the config file overrides the codex command', () => {
    const spec = resolveLaunchSpec('codex', {
      codex: { command: '/opt/codex-acp', args: ['-c', 'x=1'], env: {} },
    });
    expect(spec).toMatchObject({ authMethod: 'openai-api-key', authLoginFile: { dirEnv: 'CODEX_HOME' } });
  });
});
