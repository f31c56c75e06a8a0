/**
 * Trust in a repository's own commands (`.boocoder.json`: setup, check), the way `direnv allow`
 * works. A command written in a repository is code from whoever wrote the repository (a cloned
 * project, a pull request, an agent's earlier edit): running it unasked is code execution. So it
 * runs only once the human has trusted the file's exact bytes, recorded here with its SHA-256;
 * any change to the file asks again. Only the human grants trust: the `boocoder trust` command or
 * boocoder's own config file (`trustRepoFile`), never a tool call, which a prompt-injected MCP
 * client could make.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type ProjectSettingsInput, projectSettingsSchema } from '../config.js';
import { BoocoderError } from '../errors.js';
import { resolveRepository } from '../worktrees/repository.js';

export const REPO_SETTINGS_FILE = '.boocoder.json';
/** A settings file is a few lines; a huge one is refused rather than read into memory. */
const MAX_SETTINGS_BYTES = 64 * 1024;

const trustStoreSchema = z.object({ files: z.record(z.string(), z.string()).default({}) });

export interface RepoSettings {
  settings: ProjectSettingsInput;
  /** SHA-256 (hex) of the file's bytes: what trust is granted to. */
  hash: string;
  file: string;
}

function trustStorePath(home: string): string {
  return join(home, 'trust.json');
}

/** The repository's `.boocoder.json`, parsed; undefined when there is none. */
export async function readRepoSettings(rootPath: string): Promise<RepoSettings | undefined> {
  const file = join(rootPath, REPO_SETTINGS_FILE);
  const info = await lstat(file).catch(() => undefined);
  if (!info) return undefined;
  // A link could make the trusted bytes those of a file outside the repository that changes
  // under it; only a regular file of the checkout is read.
  if (!info.isFile() || info.size > MAX_SETTINGS_BYTES) {
    throw new BoocoderError(
      'E_CONFIG',
      `the repository's ${REPO_SETTINGS_FILE} must be a regular file of at most ${MAX_SETTINGS_BYTES} bytes`,
    );
  }
  const bytes = await readFile(file);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BoocoderError('E_CONFIG', `the repository's ${REPO_SETTINGS_FILE} is not valid JSON; fix it`);
  }
  const parsed = projectSettingsSchema.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
    throw new BoocoderError('E_CONFIG', `the repository's ${REPO_SETTINGS_FILE} is not valid: ${why}`);
  }
  return { settings: parsed.data, hash: createHash('sha256').update(bytes).digest('hex'), file };
}

async function readTrustStore(home: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(trustStorePath(home), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const parsed = trustStoreSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data.files : {};
}

/** True when the human trusted exactly these bytes of this file. */
export async function isRepoSettingsTrusted(home: string, repo: RepoSettings): Promise<boolean> {
  return (await readTrustStore(home))[repo.file] === repo.hash;
}

/**
 * `boocoder trust [path]`: records the current bytes of the repository's `.boocoder.json` as
 * trusted. Returns what was trusted, for the command to show the human.
 */
export async function trustRepository(home: string, path: string): Promise<RepoSettings> {
  const repo = await resolveRepository(path);
  const settings = await readRepoSettings(repo.rootPath);
  if (!settings) {
    throw new BoocoderError('E_NOT_FOUND', `${repo.rootPath} has no ${REPO_SETTINGS_FILE}; nothing to trust`);
  }
  const files = { ...(await readTrustStore(home)), [settings.file]: settings.hash };
  await mkdir(home, { recursive: true, mode: 0o700 });
  // Written whole and renamed into place: a crash never leaves half a store.
  const tmp = `${trustStorePath(home)}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ files }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, trustStorePath(home));
  return settings;
}

/** What `boocoder trust` prints: the commands the human has just allowed to run. */
export function describeTrusted(trusted: RepoSettings): string {
  const s = trusted.settings;
  const lines = [`trusted ${trusted.file} (sha256 ${trusted.hash.slice(0, 16)}…)`];
  if (s.setup) lines.push(`  setup: ${s.setup}`);
  if (s.check) lines.push(`  check: ${s.check}`);
  if (s.copy?.length) lines.push(`  copy:  ${s.copy.join(' ')}`);
  lines.push('boocoder asks again whenever the file changes.');
  return `${lines.join('\n')}\n`;
}
