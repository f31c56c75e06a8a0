/**
 * The probe runs whatever sits on PATH under an agent's name. These fake agents attack it: a binary
 * that acts when called with anything but its version flag, one that hangs with a hanging child,
 * one that floods 100 MB, and agent names/commands built for injection or path traversal.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentLaunchSpec } from '../../src/agents/launch-specs.js';
import { probeAgents } from '../../src/agents/probe.js';
import { killProcessGroup } from '../../src/agents/process-group.js';

let root: string;
let bin: string;
let markers: string;

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-probe-sec-')));
  bin = join(root, 'bin');
  markers = join(root, 'markers');
  await mkdir(bin);
  await mkdir(markers);
});

afterEach(async () => {
  // Belt and braces: if a probe failed to kill something, do not leave it running.
  for (const name of await readdir(markers).catch(() => [] as string[])) {
    if (!name.endsWith('.pid')) continue;
    const pid = Number(await readFile(join(markers, name), 'utf8'));
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      killProcessGroup(pid, 'SIGKILL');
    }
  }
  await rm(root, { recursive: true, force: true });
});

async function fake(dir: string, name: string, body: string): Promise<void> {
  await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(join(dir, name), 0o755);
}

const spec = (name: string, command: string, versionArgs?: string[]): AgentLaunchSpec => ({
  name,
  label: name,
  command,
  args: ['acp', '--yolo'],
  env: {},
  ...(versionArgs ? { versionArgs } : {}),
});

function probe(specs: AgentLaunchSpec[], timeoutMs = 10_000) {
  return probeAgents({ specs, pathEnv: bin, homeDir: root, timeoutMs, env: { PATH: '/usr/bin:/bin' } });
}

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
}

describe('probe against hostile fake agents', () => {
  it('calls a binary only with its exact version arguments, never its ACP command', async () => {
    await fake(
      bin,
      'fake-strict',
      `if [ "$#" -eq 1 ] && [ "$1" = "--version" ]; then echo "fake-strict 0.9.1"; exit 0; fi\ntouch "${markers}/strict-called-with-$#"`,
    );
    const [result] = await probe([spec('strict', 'fake-strict', ['--version'])]);
    expect(result).toMatchObject({ version: '0.9.1', supportsAcp: true });
    expect(await readdir(markers)).toEqual([]);
  });

  it('never runs a binary that has no version flag (claude-agent-acp, codex-acp)', async () => {
    await fake(bin, 'fake-noflag', `touch "${markers}/noflag-ran"`);
    const [result] = await probe([spec('noflag', 'fake-noflag')]);
    expect(result).toMatchObject({ installPath: join(bin, 'fake-noflag'), version: null, supportsAcp: true });
    expect(result?.error).toBeUndefined();
    expect(await readdir(markers)).toEqual([]);
  });

  it('kills a hanging binary and the hanging child it spawned, and records the timeout', async () => {
    await fake(
      bin,
      'fake-hang',
      `echo $$ > "${markers}/hang-self.pid"\nsleep 1000 &\necho $! > "${markers}/hang-child.pid"\nwait`,
    );
    const started = Date.now();
    const [result] = await probe([spec('hang', 'fake-hang', ['--version'])], 1000);
    // The fake sleeps 1000 s: returning at all within the test's budget means the timeout worked.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result?.error).toMatch(/timed out after 1000 ms/);
    expect(result?.version).toBeNull();
    const self = Number(await readFile(join(markers, 'hang-self.pid'), 'utf8'));
    const child = Number(await readFile(join(markers, 'hang-child.pid'), 'utf8'));
    expect(exists(self)).toBe(false);
    expect(exists(child)).toBe(false);
  }, 40_000);

  it('stops reading a binary that prints 100 MB, keeps at most maxOutputBytes, and kills it', async () => {
    await fake(
      bin,
      'fake-flood',
      `echo $$ > "${markers}/flood-self.pid"\nyes yyyyyyyyyyyyyyy | head -c 104857600`,
    );
    const [result] = await probeAgents({
      specs: [spec('flood', 'fake-flood', ['--version'])],
      pathEnv: bin,
      homeDir: root,
      maxOutputBytes: 64 * 1024,
      env: { PATH: '/usr/bin:/bin' },
    });
    expect(result?.error).toMatch(/more than 65536 bytes/);
    expect(result?.version).toBeNull();
    expect(exists(Number(await readFile(join(markers, 'flood-self.pid'), 'utf8')))).toBe(false);
  }, 40_000);

  it('refuses hostile agent names and commands before any lookup or spawn', async () => {
    const trap = `touch "${markers}/hostile-ran-$$"`;
    for (const name of ['--foo', ';rm -rf', 'x']) await fake(bin, name, trap);
    await fake(root, 'x', trap); // reachable as ../x from bin
    const results = await probe([
      spec('--foo', 'x', ['--version']),
      spec(';rm -rf /', 'x', ['--version']),
      spec('../x', 'x', ['--version']),
      spec('Upper', 'x', ['--version']),
      spec('ok-name', '--foo', ['--version']),
      spec('ok-name2', ';rm -rf', ['--version']),
      spec('ok-name3', '../x', ['--version']),
      spec('ok-name4', `${bin}/../x`, ['--version']),
      spec('ok-name5', 'bin/x', ['--version']),
    ]);
    expect(results.map((r) => r.error)).toEqual([
      'invalid agent name',
      'invalid agent name',
      'invalid agent name',
      'invalid agent name',
      'invalid command',
      'invalid command',
      'invalid command',
      'invalid command',
      'invalid command',
    ]);
    for (const r of results) expect(r).toMatchObject({ installPath: null, supportsAcp: false });
    expect(await readdir(markers)).toEqual([]);
  });

  it('ignores relative PATH entries, which would resolve against the server cwd', async () => {
    // A repository the server runs in could plant `bin/opencode`; PATH=":.:bin" would then find it.
    await fake(bin, 'fake-rel', `touch "${markers}/relative-ran"\necho 1.0.0`);
    const previous = process.cwd();
    process.chdir(root);
    try {
      const [result] = await probeAgents({
        specs: [spec('rel', 'fake-rel', ['--version'])],
        pathEnv: ':.:bin:./bin',
        homeDir: root,
      });
      expect(result).toMatchObject({ installPath: null, error: 'fake-rel not found' });
    } finally {
      process.chdir(previous);
    }
    expect(await readdir(markers)).toEqual([]);
  });

  it('skips non-executable files and directories named like the agent', async () => {
    await writeFile(join(bin, 'fake-noexec'), '#!/bin/sh\necho 1.0.0\n');
    await mkdir(join(bin, 'fake-dir'));
    const results = await probe([spec('noexec', 'fake-noexec', ['--version']), spec('dir', 'fake-dir')]);
    for (const r of results) expect(r).toMatchObject({ installPath: null, supportsAcp: false });
  });
});
