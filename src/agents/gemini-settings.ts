/**
 * Gemini CLI's pre-session setup: the `settings.json` in its isolated home.
 *
 * Gemini reads its auth method from `~/.gemini/settings.json` (`security.auth.selectedType`). Over
 * ACP it falls back to the API key when none is selected, so a user who logged in with Google
 * (oauth_creds.json, linked in by agent-env) would get "Gemini API key is missing", and the
 * headless `gemini -p` path refuses to start at all. The isolated home never sees the user's own
 * settings, so boocoder selects the method from what the agent's environment offers, in Gemini's
 * own order of precedence (GOOGLE_GENAI_USE_GCA, GOOGLE_GENAI_USE_VERTEXAI, GEMINI_API_KEY), then a
 * linked Google login.
 *
 * It also turns off usage statistics and self-update: with no settings Gemini would send usage
 * statistics to play.googleapis.com from every background task (a choice the user never made in
 * this home), and an agent that updates itself mid-queue changes the binary a cached probe vouched
 * for. A user who wants otherwise points GEMINI_CLI_SYSTEM_SETTINGS_PATH (system settings win over
 * these user settings) at their own file in the agent's `env` in the config file.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Env = Readonly<Record<string, string>>;
type Settings = Record<string, unknown>;

export type GeminiAuthType = 'oauth-personal' | 'vertex-ai' | 'gemini-api-key';

/** The auth method the environment offers, or undefined to leave the agent's own choice alone. */
export function chooseGeminiAuthType(env: Env, hasGoogleLogin: boolean): GeminiAuthType | undefined {
  if (env.GOOGLE_GENAI_USE_GCA === 'true') return 'oauth-personal';
  if (env.GOOGLE_GENAI_USE_VERTEXAI === 'true') return 'vertex-ai';
  if (env.GEMINI_API_KEY) return 'gemini-api-key';
  return hasGoogleLogin ? 'oauth-personal' : undefined;
}

const isObject = (v: unknown): v is Settings => typeof v === 'object' && v !== null && !Array.isArray(v);

function withValue(settings: Settings, path: readonly string[], value: unknown): Settings {
  const [key, ...rest] = path;
  if (key === undefined) return settings;
  const inner = isObject(settings[key]) ? (settings[key] as Settings) : {};
  return { ...settings, [key]: rest.length === 0 ? value : withValue(inner, rest, value) };
}

/**
 * `existing` with boocoder's keys set; every other key (the agent's own writes) is kept. Pure.
 * A malformed existing file counts as empty: Gemini could not read it either.
 */
export function planGeminiSettings(existing: unknown, authType: GeminiAuthType | undefined): Settings {
  let settings: Settings = isObject(existing) ? existing : {};
  if (authType) settings = withValue(settings, ['security', 'auth', 'selectedType'], authType);
  settings = withValue(settings, ['privacy', 'usageStatisticsEnabled'], false);
  settings = withValue(settings, ['general', 'enableAutoUpdate'], false);
  return withValue(settings, ['general', 'enableAutoUpdateNotification'], false);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Writes `${geminiHome}/.gemini/settings.json` (geminiHome: the isolated HOME, or GEMINI_CLI_HOME)
 * when its content changes. Atomic (write then rename): tasks starting side by side may race here,
 * and Gemini must never read a half-written file.
 */
export function writeGeminiSettings(geminiHome: string, env: Env): void {
  const dir = join(geminiHome, '.gemini');
  const file = join(dir, 'settings.json');
  const hasGoogleLogin = existsSync(join(dir, 'oauth_creds.json'));
  const existing = readJson(file);
  const next = planGeminiSettings(existing, chooseGeminiAuthType(env, hasGoogleLogin));
  if (JSON.stringify(next) === JSON.stringify(existing)) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
