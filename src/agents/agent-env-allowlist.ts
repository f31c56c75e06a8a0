/**
 * What of boocoder's own environment an agent process may see (docs/agent-environment.md).
 *
 * An agent runs whatever its model writes, so its environment is handed to the model: anything
 * boocoder holds there is the model's. Hence an allowlist, not a blocklist: a variable nobody
 * listed (a new BOOCODER_* setting, a deploy key the user exported) stays out by default.
 * An agent gets
 * - the general variables in GENERAL_VARIABLES / GENERAL_PREFIXES (locale, terminal, proxies, TLS
 *   CAs, who the user is, where temp files go, where Node version managers live);
 * - the credentials of its own provider(s) and its own settings namespace (AGENT_VARIABLES), and
 *   only for that agent: a codex task does not get the user's Anthropic key;
 * - whatever its config-file entry sets (applied on top by agent-env.ts, so the user can always
 *   hand an agent more).
 * Never: BOOCODER_* (BOOCODER_TOKEN would let the model call boocoder's endpoint with full rights,
 * apply its own changes into the user's repository and answer its own permission requests),
 * DATABASE_URL / TEST_DATABASE_URL (a password, and the queue itself), GIT_* (GIT_DIR or
 * GIT_WORK_TREE would point the agent's git at another repository), npm's npm_* and INIT_CWD
 * (they name boocoder's checkout, which tools then treat as "the project"), OLDPWD.
 */
import { basename, dirname } from 'node:path';

type Env = Readonly<Record<string, string>>;

/** Passed through unchanged to every agent. */
const GENERAL_VARIABLES: ReadonlySet<string> = new Set([
  'PATH', // filtered by agentSearchPath
  'LANG',
  'LANGUAGE',
  'TZ',
  'TERM',
  'COLORTERM',
  'NO_COLOR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'all_proxy',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
  'TMP',
  'TEMP',
  // Node version managers: their shims (an agent installed under them) find their installs here,
  // and HOME, where they would look otherwise, is the agent's isolated one.
  'VOLTA_HOME',
  'NVM_DIR',
  'FNM_DIR',
  'ASDF_DIR',
  'ASDF_DATA_DIR',
  'BUN_INSTALL',
]);

/** The locale categories (LC_ALL, LC_CTYPE...). */
const GENERAL_PREFIXES: readonly string[] = ['LC_'];

interface AgentVariables {
  /** Exact names: the documented credential variables of the agent's provider(s). */
  names: readonly string[];
  /** The agent's own settings namespace (OPENCODE_..., GEMINI_...). */
  prefixes: readonly string[];
}

const AWS_BEDROCK = [
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_BEARER_TOKEN_BEDROCK',
];

/**
 * Per built-in agent, by name (a config entry that overrides a built-in keeps its name and so
 * these). Custom agents get none: boocoder does not know their provider; their config entry's
 * `env` names the keys they need.
 */
const AGENT_VARIABLES: Readonly<Record<string, AgentVariables>> = {
  // opencode talks to many providers; it gets the keys of the ones it ships with by default
  // (Anthropic, OpenAI, Google, OpenRouter, Groq, DeepSeek, xAI, Mistral, opencode Zen, Bedrock).
  opencode: {
    names: [
      'ANTHROPIC_API_KEY',
      'OPENAI_API_KEY',
      'GEMINI_API_KEY',
      'GOOGLE_GENERATIVE_AI_API_KEY',
      'OPENROUTER_API_KEY',
      'GROQ_API_KEY',
      'DEEPSEEK_API_KEY',
      'XAI_API_KEY',
      'MISTRAL_API_KEY',
      ...AWS_BEDROCK,
    ],
    prefixes: ['OPENCODE_'],
  },
  // Anthropic's API, or Bedrock / Vertex AI when CLAUDE_CODE_USE_BEDROCK / _VERTEX says so.
  claude: {
    names: [...AWS_BEDROCK, 'CLOUD_ML_REGION', 'GOOGLE_APPLICATION_CREDENTIALS'],
    prefixes: ['ANTHROPIC_', 'CLAUDE_CODE_'],
  },
  codex: {
    names: ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID'],
    prefixes: ['CODEX_'],
  },
  gemini: {
    names: [
      'GOOGLE_API_KEY',
      'GOOGLE_GEMINI_BASE_URL',
      'GOOGLE_CLOUD_PROJECT',
      'GOOGLE_CLOUD_LOCATION',
      'GOOGLE_APPLICATION_CREDENTIALS',
    ],
    prefixes: ['GEMINI_', 'GOOGLE_GENAI_'],
  },
  // Qwen Code speaks the OpenAI-compatible API (DashScope by default).
  qwen: {
    names: ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_MODEL', 'DASHSCOPE_API_KEY'],
    prefixes: ['QWEN_'],
  },
};

const NO_AGENT_VARIABLES: AgentVariables = { names: [], prefixes: [] };

function agentVariables(agentName: string): AgentVariables {
  return Object.hasOwn(AGENT_VARIABLES, agentName)
    ? (AGENT_VARIABLES[agentName] as AgentVariables)
    : NO_AGENT_VARIABLES;
}

/** True for a variable `agentName` may inherit from boocoder's environment. */
export function isInheritable(key: string, agentName: string): boolean {
  if (GENERAL_VARIABLES.has(key) || GENERAL_PREFIXES.some((p) => key.startsWith(p))) return true;
  const own = agentVariables(agentName);
  return own.names.includes(key) || own.prefixes.some((p) => key.startsWith(p));
}

/**
 * `<dir>/node_modules/.bin` (what npm, npx and pnpm put first on PATH for the package they run)
 * and npm's node-gyp-bin. Under `npm start` the first is boocoder's own checkout: its dev
 * dependencies include agent CLIs, which would silently replace the user's installed agents (a
 * different version, without the user's plugins) for both the probe and every task.
 */
export function isNpmInjectedBinDir(dir: string): boolean {
  const trimmed = dir.replace(/\/+$/, '');
  if (basename(trimmed) === '.bin' && basename(dirname(trimmed)) === 'node_modules') return true;
  return trimmed.endsWith('/@npmcli/run-script/lib/node-gyp-bin');
}

/**
 * The user's PATH without npm's injected bin directories (isNpmInjectedBinDir) and without
 * relative entries (resolved against the agent's cwd, the worktree, they would run a binary the
 * repository planted). A config entry that wants one of them names it (its `command` as an
 * absolute path, or PATH in its `env`).
 */
export function agentSearchPath(path: string | undefined): string {
  return (path ?? '')
    .split(':')
    .filter((dir) => dir.startsWith('/') && !isNpmInjectedBinDir(dir))
    .join(':');
}

/** The part of boocoder's environment `agentName` inherits (see the module comment). */
export function inheritedAgentEnv(childEnv: Env, agentName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(childEnv)) if (isInheritable(key, agentName)) env[key] = value;
  if (childEnv.PATH !== undefined) env.PATH = agentSearchPath(childEnv.PATH);
  return env;
}

/**
 * The environment a process started in `cwd` gets: PWD is `cwd`, whatever the caller passed.
 * Blocks writes into boocoder's own working directory: tools that take "the current directory"
 * from $PWD rather than getcwd() (opencode run, shells, many scripts) would otherwise work in the
 * folder boocoder was started from (the user's checkout, past review) instead of the worktree.
 * OLDPWD goes too: it is the directory the shell left to start boocoder.
 */
export function confinedToWorkingDir(env: Env, cwd: string): Record<string, string> {
  const { OLDPWD: _left, ...rest } = env;
  return { ...rest, PWD: cwd };
}
