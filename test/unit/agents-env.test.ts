import { lstat, mkdir, mkdtemp, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentHomeDir, buildAgentEnv, planAgentEnv } from '../../src/agents/agent-env.js';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';

const spec = (name: string, env: Record<string, string> = {}): AgentLaunchSpec => ({
  name,
  label: name,
  command: name,
  args: [],
  env,
});

describe('planAgentEnv', () => {
  const user = {
    PATH: '/usr/bin',
    HOME: '/home/me',
    XDG_CONFIG_HOME: '/home/me/.cfg',
    CLAUDE_CONFIG_DIR: '/home/me/.c',
    OPENAI_API_KEY: 'k',
  };

  it("moves HOME, XDG_* and CODEX_HOME into the agent's own home and keeps the user's allowed env", () => {
    const { env, dirs } = planAgentEnv({ spec: spec('codex'), home: '/b', childEnv: user });
    expect(env).toMatchObject({
      PATH: '/usr/bin',
      OPENAI_API_KEY: 'k',
      HOME: '/b/agents/codex',
      XDG_CONFIG_HOME: '/b/agents/codex/.config',
      XDG_DATA_HOME: '/b/agents/codex/.local/share',
      XDG_STATE_HOME: '/b/agents/codex/.local/state',
      XDG_CACHE_HOME: '/b/agents/codex/.cache',
      CODEX_HOME: '/b/agents/codex/.codex',
    });
    expect(env.CLAUDE_CONFIG_DIR).toBeUndefined();
    expect(dirs).toContain('/b/agents/codex/.codex');
    expect(dirs.every((d) => d.startsWith('/b/agents/codex'))).toBe(true);
  });

  it("lets the spec's env win, and then links no login into a home it does not use", () => {
    const { env, links, dirs } = planAgentEnv({
      spec: spec('opencode', { HOME: '/home/me', OPENCODE_CONFIG: '/etc/oc.json' }),
      home: '/b',
      childEnv: user,
    });
    expect(env).toMatchObject({ HOME: '/home/me', OPENCODE_CONFIG: '/etc/oc.json' });
    expect(links).toEqual([]);
    expect(dirs).not.toContain('/home/me');
  });

  it("links exactly the credential files of built-in agents, following the user's own variables", () => {
    const links = (name: string) => planAgentEnv({ spec: spec(name), home: '/b', childEnv: user }).links;
    expect(links('opencode')).toEqual([
      {
        from: '/home/me/.local/share/opencode/auth.json',
        to: '/b/agents/opencode/.local/share/opencode/auth.json',
      },
    ]);
    expect(links('claude')).toEqual([
      { from: '/home/me/.c/.credentials.json', to: '/b/agents/claude/.claude/.credentials.json' },
    ]);
    expect(links('codex')).toEqual([
      { from: '/home/me/.codex/auth.json', to: '/b/agents/codex/.codex/auth.json' },
    ]);
    expect(links('gemini').map((l) => l.from)).toEqual([
      '/home/me/.gemini/oauth_creds.json',
      '/home/me/.gemini/google_accounts.json',
    ]);
    expect(links('my-agent')).toEqual([]);
  });

  it('refuses agent names that would move the home elsewhere (path traversal)', () => {
    for (const name of ['../x', 'a/b', '..', ''])
      expect(() => agentHomeDir('/b', name)).toThrow(/invalid agent name/);
  });
});

describe('buildAgentEnv on disk', () => {
  let root: string;
  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-agent-env-')));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the isolated dirs and symlinks an existing login, leaving a login made inside alone', async () => {
    const userHome = join(root, 'user');
    await mkdir(join(userHome, '.codex'), { recursive: true });
    await writeFile(join(userHome, '.codex', 'auth.json'), '{"t":1}');
    const input = { spec: spec('codex'), home: join(root, 'boo'), childEnv: { HOME: userHome } };
    const env = buildAgentEnv(input);
    const linked = join(root, 'boo', 'agents', 'codex', '.codex', 'auth.json');
    expect(env.CODEX_HOME).toBe(join(root, 'boo', 'agents', 'codex', '.codex'));
    expect((await lstat(linked)).isSymbolicLink()).toBe(true);
    expect(await readlink(linked)).toBe(join(userHome, '.codex', 'auth.json'));
    expect((await lstat(join(root, 'boo', 'agents', 'codex', '.cache'))).isDirectory()).toBe(true);
    // Idempotent: a second start changes nothing.
    buildAgentEnv(input);
    expect(await readlink(linked)).toBe(join(userHome, '.codex', 'auth.json'));
  });

  it('makes no dangling link when the user has no login', async () => {
    buildAgentEnv({
      spec: spec('opencode'),
      home: join(root, 'boo'),
      childEnv: { HOME: join(root, 'nobody') },
    });
    await expect(
      lstat(join(root, 'boo', 'agents', 'opencode', '.local', 'share', 'opencode', 'auth.json')),
    ).rejects.toThrow(/ENOENT/);
  });
});
