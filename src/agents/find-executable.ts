/**
 * Finds an agent's binary by walking directories ourselves: no shell and no `which`, so nothing
 * about the lookup can be re-parsed as a command, and the result says where it was found. Also
 * fingerprints what was found, from file metadata alone, so a probe can tell an unchanged binary
 * without running it.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join } from 'node:path';
import { isNpmInjectedBinDir } from './agent-env-allowlist.js';
import { type AgentLaunchSpec, isAcceptableCommand, isValidAgentName } from './launch-specs.js';

export interface SearchDir {
  dir: string;
  /** How the directory was found: 'PATH', 'npm-prefix', '~/.local/bin', 'volta'... */
  via: string;
}

export interface SearchDirOptions {
  pathEnv: string;
  homeDir?: string;
  /** npm's global prefix when the caller knows it (NPM_CONFIG_PREFIX). */
  npmPrefix?: string;
  /** Where this Node lives: npm's default global prefix puts binaries next to it. */
  nodeBinDir?: string;
  extraDirs?: readonly string[];
}

/** Reads `prefix=` from ~/.npmrc: `npm install -g` puts binaries in <prefix>/bin. */
export async function readNpmrcPrefix(homeDir: string): Promise<string | undefined> {
  const text = await readFile(join(homeDir, '.npmrc'), 'utf8').catch(() => '');
  const match = /^\s*prefix\s*=\s*(.+?)\s*$/m.exec(text);
  const prefix = match?.[1]?.replace(/^~(?=\/|$)/, homeDir);
  return prefix && isAbsolute(prefix) ? prefix : undefined;
}

/** PATH first (the user's own choice), then the places agent installers commonly use. */
export async function agentSearchDirs(options: SearchDirOptions): Promise<SearchDir[]> {
  const dirs: SearchDir[] = [];
  const add = (dir: string | undefined, via: string) => {
    // Relative entries ('', '.', 'bin') resolve against the server's cwd: a repository could
    // plant a fake `opencode` there and have it run by the probe. Only absolute dirs count.
    if (dir && isAbsolute(dir) && !dirs.some((d) => d.dir === dir)) dirs.push({ dir, via });
  };
  // Not npm's injected bin dirs: under `npm start` they hold boocoder's own dev-dependency agents,
  // which would pass for the user's (see isNpmInjectedBinDir).
  for (const entry of options.pathEnv.split(':')) if (!isNpmInjectedBinDir(entry)) add(entry, 'PATH');
  if (options.npmPrefix) add(join(options.npmPrefix, 'bin'), 'npm-prefix');
  const home = options.homeDir;
  if (home) {
    const npmrcPrefix = await readNpmrcPrefix(home);
    if (npmrcPrefix) add(join(npmrcPrefix, 'bin'), 'npm-prefix');
  }
  add(options.nodeBinDir ?? dirname(process.execPath), 'npm-prefix');
  if (home) {
    add(join(home, '.npm-global', 'bin'), '~/.npm-global/bin');
    add(join(home, '.local', 'bin'), '~/.local/bin');
    add(join(home, '.volta', 'bin'), 'volta');
    add(join(home, '.local', 'share', 'fnm', 'aliases', 'default', 'bin'), 'fnm');
    add(join(home, '.fnm', 'aliases', 'default', 'bin'), 'fnm');
    add(join(home, '.asdf', 'shims'), 'asdf');
    add(join(home, '.bun', 'bin'), 'bun');
  }
  add('/usr/local/bin', '/usr/local/bin');
  add('/opt/homebrew/bin', '/opt/homebrew/bin');
  for (const dir of options.extraDirs ?? []) add(dir, 'extra');
  return dirs;
}

export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first executable regular file named `command` in `dirs`. Callers validate `command` first
 * (a bare name or an absolute path, see isAcceptableCommand); an absolute path is checked as is.
 */
export async function findExecutable(
  command: string,
  dirs: readonly SearchDir[],
): Promise<{ path: string; via: string } | null> {
  if (isAbsolute(command)) return (await isExecutableFile(command)) ? { path: command, via: 'config' } : null;
  if (command.includes('/')) return null;
  for (const { dir, via } of dirs) {
    const path = join(dir, command);
    if (await isExecutableFile(path)) return { path, via };
  }
  return null;
}

/** How far up from a node script to look for the package.json of the package it belongs to. */
const PACKAGE_JSON_LEVELS = 4;

/** Device, inode, size and mtime of a regular file; null for anything else or nothing. */
async function fileIdentity(path: string): Promise<string | null> {
  const info = await stat(path, { bigint: true }).catch(() => null);
  return info?.isFile() ? `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}` : null;
}

/** A `.js` file, or a script whose `#!` line runs node: what `npm install -g` links into bin. */
async function isNodeScript(path: string): Promise<boolean> {
  if (['.js', '.mjs', '.cjs'].includes(extname(path))) return true;
  // O_NONBLOCK: a binary swapped for a FIFO after its stat would otherwise block this open (and
  // the whole probe, which has no time box around fingerprinting) until someone writes to it.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(128), 0, 128, 0);
    const firstLine = buffer.toString('latin1', 0, bytesRead).split('\n', 1)[0] ?? '';
    return firstLine.startsWith('#!') && /\bnode\b/.test(firstLine);
  } finally {
    await file.close();
  }
}

async function packageJsonIdentity(script: string): Promise<string | null> {
  let dir = dirname(script);
  for (let level = 0; level < PACKAGE_JSON_LEVELS; level++) {
    const identity = await fileIdentity(join(dir, 'package.json'));
    if (identity) return identity;
    dir = dirname(dir);
  }
  return null;
}

/**
 * What identifies the installed binary at `path` without running it: the real path it resolves
 * to (npm links bin entries to a script inside the package) and that file's device, inode, size
 * and mtime, so an upgrade, a reinstall or a re-pointed link changes it. A node script adds the
 * same of its package's package.json: npm unpacks every file with one fixed 1985 mtime and a
 * launcher script is often byte-identical across versions, so only the new inode would tell them
 * apart, and a freed inode can be reused; package.json carries the version. Null when the file
 * cannot be read.
 */
export async function fingerprintBinary(path: string): Promise<string | null> {
  try {
    const target = await realpath(path);
    const identity = await fileIdentity(target);
    if (!identity) return null;
    const parts = [target, identity];
    if (await isNodeScript(target)) parts.push(`package.json=${await packageJsonIdentity(target)}`);
    return parts.join('|');
  } catch {
    return null;
  }
}

export interface LocatedAgent {
  spec: AgentLaunchSpec;
  name: string;
  label: string;
  found: { path: string; via: string } | null;
  fingerprint: string | null;
  /** Why the agent cannot be run: an invalid name or command, or no such binary. */
  error?: string;
}

/**
 * The binary's fingerprint (fingerprintBinary) plus where it was found and the spec it is probed
 * with: a probe is only as current as all of them, so a change in any one means probing again.
 */
async function fingerprintOf(
  spec: AgentLaunchSpec,
  found: { path: string; via: string },
): Promise<string | null> {
  const binary = await fingerprintBinary(found.path);
  if (!binary) return null;
  const identity = [
    found.path,
    found.via,
    binary,
    spec.command,
    spec.args,
    spec.versionArgs ?? null,
    spec.env,
  ];
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Finds the agent's binary and fingerprints it; runs nothing. */
export async function locateAgent(spec: AgentLaunchSpec, dirs: readonly SearchDir[]): Promise<LocatedAgent> {
  const located = {
    spec,
    name: String(spec.name).slice(0, 64),
    label: String(spec.label).slice(0, 200),
    found: null,
    fingerprint: null,
  };
  // Refused before any lookup or spawn: names like `--foo`, `;rm -rf /`, `../x` and commands that
  // are relative paths or option-like would be injection or path-traversal attempts.
  if (!isValidAgentName(spec.name)) return { ...located, error: 'invalid agent name' };
  if (!isAcceptableCommand(spec.command)) return { ...located, error: 'invalid command' };
  const found = await findExecutable(spec.command, dirs);
  if (!found) return { ...located, error: `${spec.command} not found` };
  return { ...located, found, fingerprint: await fingerprintOf(spec, found) };
}
