/**
 * The environment an agent process starts with, and its isolated home.
 *
 * Every agent gets its own HOME under `${BOOCODER_HOME}/agents/<name>/` (with XDG_* and CODEX_HOME
 * inside it), so the config, session databases, history and logs it writes never land in the
 * user's real ones (a boocoder task must not show up in the user's `opencode` history, rewrite
 * their settings or lock their state database) nor in the worktree (whose diff must hold only the
 * agent's edits).
 *
 * Decision on logins: the user's own agent login IS visible. Most people use an agent through a
 * subscription login (Claude, ChatGPT for Codex, Google for Gemini, Qwen OAuth, `opencode auth
 * login`), and a boocoder that demanded separate API keys would be unusable for them. So the
 * credential files named in CREDENTIAL_FILES (and only those: not settings, not history) are
 * symlinked from the user's real home into the isolated one. A symlink, never a copy: OAuth refresh
 * tokens rotate, and a refresh through a stale copy would revoke the user's own login. API keys in
 * the environment pass through only to the agent whose provider uses them, and nothing else of
 * boocoder's environment does unless allowlisted (agent-env-allowlist.ts): no BOOCODER_TOKEN, no
 * DATABASE_URL, no npm_* naming boocoder's checkout.
 * This isolation is hygiene, not a sandbox: the agent runs as the user and could read those files
 * anyway. A user who wants an agent to use everything of their real setup says so explicitly:
 * variables in the agent's `env` in the config file (HOME, XDG_CONFIG_HOME, CODEX_HOME,
 * OPENCODE_CONFIG...) win over the isolation.
 */
import { lstatSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { inheritedAgentEnv } from './agent-env-allowlist.js';
import { writeGeminiSettings } from './gemini-settings.js';
import { type AgentLaunchSpec, assertValidAgentName } from './launch-specs.js';

export interface AgentEnvInput {
  spec: AgentLaunchSpec;
  /** BOOCODER_HOME: where per-install agent state lives. */
  home: string;
  /** The environment boocoder itself was started with. */
  childEnv: Readonly<Record<string, string>>;
}

/** A credential file: where it is in the user's environment and where the agent looks for it. */
interface CredentialLink {
  /** Absolute path in the user's real home. */
  from: string;
  /** Absolute path inside the agent's isolated home. */
  to: string;
}

export interface AgentEnvPlan {
  env: Record<string, string>;
  /** Directories to create before the agent starts (codex refuses a CODEX_HOME that is missing). */
  dirs: string[];
  links: CredentialLink[];
  /** Where to write Gemini's settings.json (gemini-settings.ts): only inside the isolated home. */
  geminiHome?: string;
}

type Env = Readonly<Record<string, string>>;

/** The user's real locations, following the same variables the agents themselves honour. */
const userDataHome = (env: Env, home: string) => nonEmpty(env.XDG_DATA_HOME) ?? join(home, '.local', 'share');
const nonEmpty = (value: string | undefined) => (value && isAbsolute(value) ? value : undefined);

/**
 * Per built-in agent, the files that hold the user's login: [path in the user's env, path in the
 * isolated home]. Custom agents get none: boocoder does not know where they keep secrets.
 */
const CREDENTIAL_FILES: Readonly<
  Record<string, (user: Env, userHome: string, agentHome: string) => CredentialLink[]>
> = {
  opencode: (user, userHome, agentHome) => [
    {
      from: join(userDataHome(user, userHome), 'opencode', 'auth.json'),
      to: join(agentHome, '.local', 'share', 'opencode', 'auth.json'),
    },
  ],
  // On macOS Claude keeps its login in the keychain, which does not depend on HOME.
  claude: (user, userHome, agentHome) => [
    {
      from: join(nonEmpty(user.CLAUDE_CONFIG_DIR) ?? join(userHome, '.claude'), '.credentials.json'),
      to: join(agentHome, '.claude', '.credentials.json'),
    },
  ],
  codex: (user, userHome, agentHome) => [
    {
      from: join(nonEmpty(user.CODEX_HOME) ?? join(userHome, '.codex'), 'auth.json'),
      to: join(agentHome, '.codex', 'auth.json'),
    },
  ],
  gemini: (_user, userHome, agentHome) =>
    ['oauth_creds.json', 'google_accounts.json'].map((f) => ({
      from: join(userHome, '.gemini', f),
      to: join(agentHome, '.gemini', f),
    })),
  qwen: (_user, userHome, agentHome) => [
    { from: join(userHome, '.qwen', 'oauth_creds.json'), to: join(agentHome, '.qwen', 'oauth_creds.json') },
  ],
};

/** `${home}/agents/<name>`: the agent's isolated HOME for this boocoder install. */
export function agentHomeDir(home: string, agentName: string): string {
  // The name becomes a path segment: `../x` or `a/b` would place the home elsewhere.
  assertValidAgentName(agentName);
  return join(home, 'agents', agentName);
}

/**
 * What buildAgentEnv will do, without doing it: the environment (user env < isolation < spec env),
 * the directories to create and the credential links to make. Pure, for tests.
 */
export function planAgentEnv(input: AgentEnvInput): AgentEnvPlan {
  const { spec, childEnv } = input;
  const agentHome = agentHomeDir(input.home, spec.name);
  const isolation: Record<string, string> = {
    HOME: agentHome,
    XDG_CONFIG_HOME: join(agentHome, '.config'),
    XDG_DATA_HOME: join(agentHome, '.local', 'share'),
    XDG_STATE_HOME: join(agentHome, '.local', 'state'),
    XDG_CACHE_HOME: join(agentHome, '.cache'),
    CODEX_HOME: join(agentHome, '.codex'),
  };
  // Only the allowlist of boocoder's env. The user's own CLAUDE_CONFIG_DIR is not on it: it would
  // bypass the isolated HOME unless the spec sets it.
  const env = { ...inheritedAgentEnv(childEnv, spec.name), ...isolation, ...spec.env };
  const dirs = [
    ...new Set([
      env.HOME,
      env.XDG_CONFIG_HOME,
      env.XDG_DATA_HOME,
      env.XDG_STATE_HOME,
      env.XDG_CACHE_HOME,
      env.CODEX_HOME,
    ]),
  ]
    // Only inside the isolated home: directories the spec points elsewhere are the user's business.
    .filter((d): d is string => typeof d === 'string' && (d === agentHome || d.startsWith(`${agentHome}/`)));
  const userHome = nonEmpty(childEnv.HOME);
  const credentials = Object.hasOwn(CREDENTIAL_FILES, spec.name) ? CREDENTIAL_FILES[spec.name] : undefined;
  // Only when the agent really uses the isolated HOME: if the spec points HOME elsewhere, the
  // user chose that home, logins included.
  const links =
    credentials && userHome && env.HOME === agentHome && userHome !== agentHome
      ? credentials(childEnv, userHome, agentHome)
      : [];
  // Gemini keeps its settings under GEMINI_CLI_HOME when set, else HOME. Outside the isolated
  // home they are the user's own: boocoder writes nothing there.
  const geminiHome = env.GEMINI_CLI_HOME || env.HOME;
  const ownsGeminiHome =
    spec.name === 'gemini' &&
    geminiHome &&
    (geminiHome === agentHome || geminiHome.startsWith(`${agentHome}/`));
  return { env, dirs, links, ...(ownsGeminiHome ? { geminiHome } : {}) };
}

function linkCredential(link: CredentialLink): void {
  // Never replace what is there: a login made inside the isolated home stays the agent's own.
  if (lstatSync(link.to, { throwIfNoEntry: false })) return;
  // No dangling links: a login flow writing through one would create files in the user's home.
  if (!statSync(link.from, { throwIfNoEntry: false })?.isFile()) return;
  mkdirSync(dirname(link.to), { recursive: true, mode: 0o700 });
  symlinkSync(link.from, link.to);
}

/**
 * The agent's environment, with its isolated home prepared (directories created, the user's
 * credential files linked; see the module comment). Synchronous because the dispatcher calls it
 * inline; it does a handful of mkdir/lstat/symlink calls per agent start.
 */
export function buildAgentEnv(input: AgentEnvInput): Record<string, string> {
  const plan = planAgentEnv(input);
  for (const dir of plan.dirs) mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const link of plan.links) {
    try {
      linkCredential(link);
    } catch {
      // A login that cannot be linked (permissions, a race with another task) is not fatal:
      // the agent then reports that it needs authentication, which the task error says.
    }
  }
  // After the links: a linked Google login decides Gemini's auth method.
  if (plan.geminiHome) writeGeminiSettings(plan.geminiHome, plan.env);
  return plan.env;
}
