/**
 * Finds an agent's binary by walking directories ourselves: no shell and no `which`, so nothing
 * about the lookup can be re-parsed as a command, and the result says where it was found.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';

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
  for (const entry of options.pathEnv.split(':')) add(entry, 'PATH');
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
