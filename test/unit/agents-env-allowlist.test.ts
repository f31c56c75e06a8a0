/**
 * The allowlist of what an agent inherits from boocoder's environment, attacked with what a real
 * boocoder process holds: its daemon token, a database URL with a password, npm's variables naming
 * its checkout (under `npm start`), git variables naming another repository, and npm's injected
 * node_modules/.bin first on PATH.
 */
import { describe, expect, it } from 'vitest';
import { planAgentEnv } from '../../src/agents/agent-env.js';
import {
  agentSearchPath,
  confinedToWorkingDir,
  inheritedAgentEnv,
  isNpmInjectedBinDir,
} from '../../src/agents/agent-env-allowlist.js';
import { agentSearchDirs } from '../../src/agents/find-executable.js';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';

const CHECKOUT = '/home/me/src/boocoder';
const BOOCODER_PROCESS_ENV: Record<string, string> = {
  PATH: `${CHECKOUT}/node_modules/.bin:/home/me/src/node_modules/.bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:/home/me/.local/bin:bin:/usr/bin`,
  HOME: '/home/me',
  PWD: CHECKOUT,
  OLDPWD: '/home/me',
  INIT_CWD: CHECKOUT,
  npm_package_json: `${CHECKOUT}/package.json`,
  npm_config_local_prefix: CHECKOUT,
  npm_lifecycle_event: 'start',
  BOOCODER_TOKEN: 'daemon-token-0123456789abcdef',
  BOOCODER_HOME: '/home/me/.boocoder',
  DATABASE_URL: 'postgres://boo:s3cret@db/boo',
  TEST_DATABASE_URL: 'postgres://boo:s3cret@db/test',
  GIT_DIR: `${CHECKOUT}/.git`,
  GIT_WORK_TREE: CHECKOUT,
  NODE_OPTIONS: '--require /tmp/x.js',
  AWS_SECRET_ACCESS_KEY: 'aws',
  LANG: 'en_US.UTF-8',
  LC_ALL: 'C.UTF-8',
  TERM: 'xterm-256color',
  HTTPS_PROXY: 'http://proxy:3128',
  SSL_CERT_FILE: '/etc/ssl/cert.pem',
  TMPDIR: '/tmp',
  USER: 'me',
  ANTHROPIC_API_KEY: 'anthropic',
  OPENAI_API_KEY: 'openai',
  GEMINI_API_KEY: 'gemini',
  OPENCODE_CONFIG: '/home/me/oc.json',
};

const spec = (name: string, env: Record<string, string> = {}): AgentLaunchSpec => ({
  name,
  label: name,
  command: name,
  args: [],
  env,
});

describe('what an agent inherits from boocoder', () => {
  it('never gets boocoder’s secrets, npm’s checkout variables or git variables, whatever the agent', () => {
    for (const name of ['opencode', 'claude', 'codex', 'gemini', 'qwen', 'my-agent']) {
      const env = inheritedAgentEnv(BOOCODER_PROCESS_ENV, name);
      const keys = Object.keys(env);
      expect(
        keys.filter((k) => /^(BOOCODER_|npm_|GIT_)/.test(k)),
        name,
      ).toEqual([]);
      for (const k of ['DATABASE_URL', 'TEST_DATABASE_URL', 'INIT_CWD', 'PWD', 'OLDPWD', 'NODE_OPTIONS'])
        expect(env[k], `${name} ${k}`).toBeUndefined();
      expect(JSON.stringify(env)).not.toContain('daemon-token');
      expect(JSON.stringify(env)).not.toContain('s3cret');
      expect(env).toMatchObject({ LANG: 'en_US.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' });
      expect(env).toMatchObject({ HTTPS_PROXY: 'http://proxy:3128', SSL_CERT_FILE: '/etc/ssl/cert.pem' });
      expect(env).toMatchObject({ TMPDIR: '/tmp', USER: 'me' });
    }
  });

  it('gives each agent only its own provider’s credentials', () => {
    const keys = (name: string) =>
      Object.keys(inheritedAgentEnv(BOOCODER_PROCESS_ENV, name))
        .filter((k) => /API_KEY|AWS_|OPENCODE_/.test(k))
        .sort();
    expect(keys('codex')).toEqual(['OPENAI_API_KEY']);
    expect(keys('claude')).toEqual(['ANTHROPIC_API_KEY', 'AWS_SECRET_ACCESS_KEY']);
    expect(keys('gemini')).toEqual(['GEMINI_API_KEY']);
    expect(keys('qwen')).toEqual(['OPENAI_API_KEY']);
    expect(keys('opencode')).toEqual([
      'ANTHROPIC_API_KEY',
      'AWS_SECRET_ACCESS_KEY',
      'GEMINI_API_KEY',
      'OPENAI_API_KEY',
      'OPENCODE_CONFIG',
    ]);
    // A custom agent: boocoder does not know its provider; its config entry names its keys.
    expect(keys('my-agent')).toEqual([]);
  });

  it('lets the config entry set anything, secrets named by the user included, but never PWD', () => {
    const { env } = planAgentEnv({
      spec: spec('my-agent', { MY_KEY: 'k', DATABASE_URL: 'postgres://agent-own' }),
      home: '/b',
      childEnv: BOOCODER_PROCESS_ENV,
    });
    expect(env).toMatchObject({
      MY_KEY: 'k',
      DATABASE_URL: 'postgres://agent-own',
      HOME: '/b/agents/my-agent',
    });
    expect(confinedToWorkingDir({ ...env, PWD: '/elsewhere' }, '/wt/s1').PWD).toBe('/wt/s1');
    expect(confinedToWorkingDir(BOOCODER_PROCESS_ENV, '/wt/s1').OLDPWD).toBeUndefined();
  });
});

describe('the PATH agents are searched on', () => {
  it('drops npm’s injected bin dirs (boocoder’s own dev-dependency agents) and relative entries', () => {
    expect(agentSearchPath(BOOCODER_PROCESS_ENV.PATH)).toBe('/home/me/.local/bin:/usr/bin');
    expect(inheritedAgentEnv(BOOCODER_PROCESS_ENV, 'opencode').PATH).toBe('/home/me/.local/bin:/usr/bin');
    expect(isNpmInjectedBinDir('/x/node_modules/.bin/')).toBe(true);
    expect(isNpmInjectedBinDir('/x/node_modules/bin')).toBe(false);
    expect(isNpmInjectedBinDir('/x/.bin')).toBe(false);
  });

  it('is what the probe searches too', async () => {
    const dirs = await agentSearchDirs({ pathEnv: BOOCODER_PROCESS_ENV.PATH as string });
    expect(dirs.filter((d) => d.via === 'PATH').map((d) => d.dir)).toEqual([
      '/home/me/.local/bin',
      '/usr/bin',
    ]);
  });

  it('keeps a PATH the config entry names, npm’s bin dirs included', () => {
    const path = `${CHECKOUT}/node_modules/.bin:/usr/bin`;
    const { env } = planAgentEnv({
      spec: spec('opencode', { PATH: path }),
      home: '/b',
      childEnv: BOOCODER_PROCESS_ENV,
    });
    expect(env.PATH).toBe(path);
  });
});
