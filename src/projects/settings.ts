/**
 * A project's effective worktree settings: the config file's entry for the repository (the user
 * wrote it, so it is trusted) wins field by field over the repository's `.boocoder.json`, whose
 * commands are trusted only as trust.ts says.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config, ProjectConfigInput } from '../config.js';
import { BoocoderError } from '../errors.js';
import { isRepoSettingsTrusted, REPO_SETTINGS_FILE, readRepoSettings } from './trust.js';

const DEFAULT_TIMEOUT_S = 600;

export interface ProjectCommand {
  /** run with /bin/sh -c in the worktree */
  command: string;
  source: 'config' | 'repository';
  trusted: boolean;
}

export interface ProjectSettings {
  setup?: ProjectCommand;
  check?: ProjectCommand;
  /** .gitignore-syntax patterns of ignored files to copy (the config's and the repository's) */
  copy: string[];
  setupTimeoutMs: number;
  checkTimeoutMs: number;
}

/** The config file's entry for a repository, matched by its path or by that path's realpath. */
function configEntry(config: Config, rootPath: string): ProjectConfigInput | undefined {
  for (const [key, entry] of Object.entries(config.projects)) {
    let real = resolve(key);
    try {
      real = realpathSync(real);
    } catch {
      // a configured repository that does not exist (yet) matches nothing
    }
    if (real === rootPath || resolve(key) === rootPath) return entry;
  }
  return undefined;
}

export async function resolveProjectSettings(config: Config, rootPath: string): Promise<ProjectSettings> {
  const own = configEntry(config, rootPath) ?? {};
  const repo = await readRepoSettings(rootPath);
  const trusted = repo
    ? own.trustRepoFile === true || (await isRepoSettingsTrusted(config.home, repo))
    : false;
  const pick = (name: 'setup' | 'check'): ProjectCommand | undefined => {
    if (own[name]) return { command: own[name], source: 'config', trusted: true };
    const command = repo?.settings[name];
    return command ? { command, source: 'repository', trusted } : undefined;
  };
  const setup = pick('setup');
  const check = pick('check');
  const timeout = (name: 'setupTimeoutS' | 'checkTimeoutS') =>
    (own[name] ?? repo?.settings[name] ?? DEFAULT_TIMEOUT_S) * 1000;
  return {
    ...(setup ? { setup } : {}),
    ...(check ? { check } : {}),
    copy: [...(own.copy ?? []), ...(repo?.settings.copy ?? [])],
    setupTimeoutMs: timeout('setupTimeoutS'),
    checkTimeoutMs: timeout('checkTimeoutS'),
  };
}

/** The error for a repository command that is not trusted: it says what the human must do. */
export function untrustedCommandError(rootPath: string, name: 'setup' | 'check'): BoocoderError {
  return new BoocoderError(
    'E_UNTRUSTED_COMMAND',
    `the ${name} command in the repository's ${REPO_SETTINGS_FILE} is not trusted, so it did not run; ` +
      `a human must review the file and run \`boocoder trust ${rootPath}\` (asked again whenever it changes)`,
  );
}
