import { chmod, mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';
import { BUILTIN_AGENT_NAMES, listLaunchSpecs } from '../../src/agents/launch-specs.js';
import { probeAgents } from '../../src/agents/probe.js';

let root: string;

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-probe-')));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function fake(dir: string, name: string, body: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(join(dir, name), 0o755);
  return join(dir, name);
}

const spec = (
  name: string,
  command: string,
  versionArgs: string[] | undefined = ['--version'],
): AgentLaunchSpec => ({
  name,
  label: `Label ${name}`,
  command,
  args: ['--acp'],
  env: {},
  ...(versionArgs ? { versionArgs } : {}),
});

describe('probeAgents with fake agents', () => {
  it('finds a binary on PATH and parses its version', async () => {
    const path = await fake(join(root, 'bin'), 'fake-ok', 'echo "fake-ok version v2.3.4-beta.1 (build 77)"');
    const [result] = await probeAgents({
      specs: [spec('ok', 'fake-ok')],
      pathEnv: join(root, 'bin'),
      homeDir: root,
    });
    expect(result).toEqual({
      name: 'ok',
      label: 'Label ok',
      installPath: path,
      version: '2.3.4-beta.1',
      foundVia: 'PATH',
      supportsAcp: true,
      supportsMcpClient: false,
      needsAuth: false,
    });
  });

  it('takes the first PATH entry that has the binary', async () => {
    await fake(join(root, 'a'), 'fake-twice', 'echo 1.0.0');
    const second = await fake(join(root, 'b'), 'fake-twice', 'echo 2.0.0');
    const [result] = await probeAgents({
      specs: [spec('twice', 'fake-twice')],
      pathEnv: `${join(root, 'empty')}:${join(root, 'b')}:${join(root, 'a')}`,
      homeDir: root,
    });
    expect(result).toMatchObject({ installPath: second, version: '2.0.0' });
  });

  it('looks beyond PATH: ~/.local/bin, the ~/.npmrc prefix, extra dirs and absolute config commands', async () => {
    const local = await fake(join(root, '.local', 'bin'), 'fake-local', 'echo 1.1.0');
    await writeFile(join(root, '.npmrc'), 'fund=false\nprefix=~/npm-global-x\n');
    const npm = await fake(join(root, 'npm-global-x', 'bin'), 'fake-npm', 'echo 1.2.0');
    const extra = await fake(join(root, 'extra'), 'fake-extra', 'echo 1.3.0');
    const absolute = await fake(join(root, 'opt'), 'fake-abs', 'echo 1.4.0');
    const results = await probeAgents({
      specs: [
        spec('local', 'fake-local'),
        spec('npm', 'fake-npm'),
        spec('extra', 'fake-extra'),
        spec('abs', absolute),
      ],
      pathEnv: join(root, 'empty'),
      homeDir: root,
      extraDirs: [join(root, 'extra')],
    });
    expect(results.map((r) => [r.installPath, r.foundVia, r.version])).toEqual([
      [local, '~/.local/bin', '1.1.0'],
      [npm, 'npm-prefix', '1.2.0'],
      [extra, 'extra', '1.3.0'],
      [absolute, 'config', '1.4.0'],
    ]);
  });

  it('records missing binaries, failing version commands and output without a version', async () => {
    await fake(join(root, 'bin'), 'fake-fails', 'echo boom >&2; exit 3');
    await fake(join(root, 'bin'), 'fake-silent', 'echo no numbers here');
    const results = await probeAgents({
      specs: [spec('missing', 'fake-missing'), spec('fails', 'fake-fails'), spec('silent', 'fake-silent')],
      pathEnv: join(root, 'bin'),
      homeDir: root,
    });
    expect(results[0]).toMatchObject({
      installPath: null,
      foundVia: null,
      supportsAcp: false,
      error: 'fake-missing not found',
    });
    expect(results[1]).toMatchObject({
      supportsAcp: true,
      version: null,
      error: 'version command exited with code 3',
    });
    expect(results[2]).toMatchObject({ supportsAcp: true, version: null, error: 'no version in output' });
  });

  it('probes all agents in parallel', async () => {
    // A barrier: each fake waits (up to 10 s) until all three have started. Run one after another,
    // the first would give up and print no version.
    const dir = join(root, 'bin');
    const barrier = join(root, 'barrier');
    await mkdir(barrier);
    for (const n of [1, 2, 3]) {
      await fake(
        dir,
        `fake-par${n}`,
        `touch "${barrier}/${n}"; i=0\nwhile [ "$(ls "${barrier}" | wc -l)" -lt 3 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n[ "$(ls "${barrier}" | wc -l)" -ge 3 ] && echo 3.${n}.0`,
      );
    }
    const results = await probeAgents({
      specs: [1, 2, 3].map((n) => spec(`par${n}`, `fake-par${n}`)),
      pathEnv: dir,
      homeDir: root,
      env: { PATH: '/usr/bin:/bin' },
      timeoutMs: 20_000,
    });
    expect(results.map((r) => r.version)).toEqual(['3.1.0', '3.2.0', '3.3.0']);
    expect(await readdir(barrier)).toHaveLength(3);
  }, 30_000);
});

describe('probeAgents on this machine', () => {
  it('returns one well-formed result per built-in agent, whatever is installed', async () => {
    const results = await probeAgents({
      specs: listLaunchSpecs({}),
      pathEnv: process.env.PATH ?? '',
      homeDir: homedir(),
      timeoutMs: 15_000,
    });
    expect(results.map((r) => r.name)).toEqual([...BUILTIN_AGENT_NAMES]);
    for (const r of results) {
      expect(typeof r.label).toBe('string');
      if (r.installPath === null) {
        expect(r).toMatchObject({
          version: null,
          foundVia: null,
          supportsAcp: false,
          supportsMcpClient: false,
        });
        expect(r.error).toMatch(/not found$/);
      } else {
        expect(r.installPath.startsWith('/')).toBe(true);
        expect(typeof r.foundVia).toBe('string');
        expect(r.supportsAcp).toBe(true);
        expect(r.supportsMcpClient).toBe(true);
        expect(r.version === null || /^\d+\.\d+/.test(r.version)).toBe(true);
      }
    }
  }, 60_000);
});
