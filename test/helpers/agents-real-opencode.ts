/**
 * The real opencode (npm opencode-ai, a devDependency) wired to the scripted model server:
 * its launch spec, its provider config, and a fake "user home" so that nothing a test does can
 * reach the real user's agent logins or state.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';

/** node_modules/.bin/opencode of this checkout, as an absolute path (no PATH lookup in tests). */
export const OPENCODE_BIN = resolve(
  fileURLToPath(new URL('../../node_modules/.bin/opencode', import.meta.url)),
);

export const SCRIPTED_MODEL = 'scripted/scripted-model';
export const OTHER_MODEL = 'scripted/other-model';
/** opencode prices per million tokens: one scripted response (120 in, 30 out) costs 0.18 USD. */
const COST = { input: 1000, output: 2000 };

/** What opencode may do without asking: edits and shell, unless a test asks for questions. */
export type OpencodePermission = Record<string, 'allow' | 'ask' | 'deny'>;
const ALLOW_EDITS_AND_SHELL: OpencodePermission = { edit: 'allow', bash: 'allow' };

/** opencode.json content: one custom provider on the scripted server, edits and shell allowed. */
export function opencodeConfig(
  baseUrl: string,
  permission: OpencodePermission = ALLOW_EDITS_AND_SHELL,
): Record<string, unknown> {
  return {
    $schema: 'https://opencode.ai/config.json',
    provider: {
      scripted: {
        npm: '@ai-sdk/openai-compatible',
        name: 'Scripted',
        options: { baseURL: baseUrl, apiKey: 'not-a-real-key' },
        models: {
          'scripted-model': { name: 'Scripted', cost: COST, limit: { context: 100_000, output: 4000 } },
          'other-model': { name: 'Other', cost: COST, limit: { context: 100_000, output: 4000 } },
        },
      },
    },
    model: SCRIPTED_MODEL,
    small_model: SCRIPTED_MODEL,
    permission,
    autoupdate: false,
    share: 'disabled',
  };
}

/** The agent env for tests: the scripted provider, and no network fetches (offline CI). */
export function opencodeEnv(
  baseUrl: string,
  permission: OpencodePermission = ALLOW_EDITS_AND_SHELL,
): Record<string, string> {
  return {
    OPENCODE_CONFIG_CONTENT: JSON.stringify(opencodeConfig(baseUrl, permission)),
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    OPENCODE_DISABLE_AUTOUPDATE: '1',
  };
}

export function opencodeSpec(
  baseUrl: string,
  permission: OpencodePermission = ALLOW_EDITS_AND_SHELL,
): AgentLaunchSpec {
  return {
    name: 'opencode',
    label: 'opencode',
    command: OPENCODE_BIN,
    args: ['acp'],
    env: opencodeEnv(baseUrl, permission),
  };
}

export interface FakeUserHome {
  /** Stands in for the user's real HOME. */
  path: string;
  /** The fake user's opencode login, which agent-env links into the isolated home. */
  opencodeAuth: string;
  cleanup(): Promise<void>;
}

export async function fakeUserHome(): Promise<FakeUserHome> {
  const path = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-user-home-')));
  const dir = join(path, '.local', 'share', 'opencode');
  await mkdir(dir, { recursive: true });
  const opencodeAuth = join(dir, 'auth.json');
  await writeFile(opencodeAuth, '{}\n', { mode: 0o600 });
  return { path, opencodeAuth, cleanup: () => rm(path, { recursive: true, force: true }) };
}
