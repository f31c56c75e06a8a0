import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';
import { BUILTIN_AGENT_NAMES, listLaunchSpecs } from '../../src/agents/launch-specs.js';
import { probeAgents, probeChangedAgents } from '../../src/agents/probe.js';

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
      fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
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

describe('probeChangedAgents: a binary unchanged since its last probe is not run', () => {
  /** A fake agent that appends a line to `runs` each time it is started, then prints a version. */
  const counting = (dir: string, name: string, version = '1.0.0') =>
    fake(dir, name, `echo run >> "${join(root, 'runs')}"\necho ${version}`);
  const runs = async () =>
    (await readFile(join(root, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  const probeWith = (known: ReadonlyMap<string, string>, specs = [spec('counted', 'fake-counted')]) =>
    probeChangedAgents({ specs, pathEnv: join(root, 'bin'), homeDir: root }, known);
  const knownFrom = (r: { probed: { name: string; fingerprint: string | null }[] }) =>
    new Map(r.probed.map((p) => [p.name, p.fingerprint as string]));

  it('skips the binary entirely when its fingerprint matches, and runs it again without one', async () => {
    await counting(join(root, 'bin'), 'fake-counted');
    const first = await probeWith(new Map());
    expect(first.probed).toMatchObject([{ name: 'counted', version: '1.0.0' }]);
    expect(await runs()).toBe(1);

    const second = await probeWith(knownFrom(first));
    expect(second).toEqual({
      probed: [],
      unchanged: [{ name: 'counted', fingerprint: first.probed[0]?.fingerprint }],
    });
    expect(await runs()).toBe(1);

    // What `refresh` does: no stored fingerprints, so a cold probe.
    await probeWith(new Map());
    expect(await runs()).toBe(2);
  });

  it('runs a binary again once it is touched, or replaced by a same-looking file (new inode)', async () => {
    const path = await counting(join(root, 'bin'), 'fake-counted');
    const old = new Date('2001-02-03T04:05:06Z');
    await utimes(path, old, old);
    const first = await probeWith(new Map());

    await utimes(path, old, new Date('2002-02-03T04:05:06Z'));
    const touched = await probeWith(knownFrom(first));
    expect(touched.unchanged).toEqual([]);
    expect(touched.probed[0]?.fingerprint).not.toBe(first.probed[0]?.fingerprint);
    expect(await runs()).toBe(2);

    // An upgrade that writes identical bytes with the same mtime (npm fixes every mtime) still
    // gets a new inode.
    await utimes(path, old, old);
    const before = await probeWith(new Map());
    const staged = await counting(join(root, 'staging'), 'fake-counted');
    await utimes(staged, old, old);
    await rename(staged, path);
    const replaced = await probeWith(knownFrom(before));
    expect(replaced.unchanged).toEqual([]);
    expect(await runs()).toBe(4);
  });

  it('follows an npm bin link to its node script and notices an upgrade of the package', async () => {
    const pkg = (version: string) => join(root, 'lib', 'node_modules', `pkg-${version}`);
    for (const version of ['1.0.0', '2.0.0']) {
      await mkdir(join(pkg(version), 'bin'), { recursive: true });
      await writeFile(join(pkg(version), 'package.json'), JSON.stringify({ name: 'pkg', version }));
      const script = join(pkg(version), 'bin', 'cli.js');
      await writeFile(
        script,
        `#!${process.execPath}\nrequire('node:fs').appendFileSync(${JSON.stringify(join(root, 'runs'))}, 'run\\n');\nconsole.log(${JSON.stringify(version)});\n`,
      );
      await chmod(script, 0o755);
    }
    await mkdir(join(root, 'bin'));
    const link = join(root, 'bin', 'fake-counted');
    await symlink(join(pkg('1.0.0'), 'bin', 'cli.js'), link);
    const first = await probeWith(new Map());
    expect(first.probed).toMatchObject([{ installPath: link, version: '1.0.0' }]);
    expect((await probeWith(knownFrom(first))).probed).toEqual([]);

    // The package's own version changes while the launcher script stays byte-identical.
    await writeFile(join(pkg('1.0.0'), 'package.json'), JSON.stringify({ name: 'pkg', version: '1.0.1' }));
    const upgraded = await probeWith(knownFrom(first));
    expect(upgraded.probed).toMatchObject([{ installPath: link, version: '1.0.0' }]);

    // The link re-pointed to another version of the package.
    await rm(link);
    await symlink(join(pkg('2.0.0'), 'bin', 'cli.js'), link);
    const relinked = await probeWith(knownFrom(upgraded));
    expect(relinked.probed).toMatchObject([{ installPath: link, version: '2.0.0' }]);
    expect(await runs()).toBe(3);
  });

  it('probes again when the spec changes, and records a vanished binary as not installed', async () => {
    const path = await counting(join(root, 'bin'), 'fake-counted');
    const first = await probeWith(new Map());
    const otherArgs = await probeWith(knownFrom(first), [
      { ...spec('counted', 'fake-counted'), args: ['acp'] },
    ]);
    expect(otherArgs.unchanged).toEqual([]);
    expect(await runs()).toBe(2);

    await rm(path);
    const gone = await probeWith(knownFrom(first));
    expect(gone).toEqual({
      probed: [
        expect.objectContaining({
          name: 'counted',
          installPath: null,
          fingerprint: null,
          supportsAcp: false,
          error: 'fake-counted not found',
        }),
      ],
      unchanged: [],
    });
  });
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
