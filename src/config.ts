/**
 * The only module that reads process.env. Everything else receives a frozen Config.
 * Defaults are the secure ones: loopback bind, no token needed only on loopback, bounded limits.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { BoocoderError } from './errors.js';
import { LOG_LEVELS } from './log.js';
import { type Machine, resolveMachine } from './machine-id.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A custom (or overridden) ACP agent, declared in the config file. */
export const agentSpecSchema = z.object({
  /** Required for every agent but the native one (`boocode`), which runs in this process. */
  command: z.string().min(1).max(4096).optional(),
  args: z.array(z.string().max(4096)).max(64).default([]),
  env: z.record(z.string().max(256), z.string().max(8192)).default({}),
  label: z.string().max(200).optional(),
  versionArgs: z.array(z.string().max(256)).max(8).optional(),
  /** The model a task gets when new_task names none, in the agent's own naming. */
  model: z.string().min(1).max(200).optional(),
  /** The native agent (`boocode`): its model API's wire format, endpoint and prices (docs/native-agent.md). */
  api: z.enum(['openai', 'anthropic']).optional(),
  baseUrl: z.url().max(2048).optional(),
  /** USD per million tokens, per model name. */
  prices: z
    .record(
      z.string().max(200),
      z.object({ input: z.number().min(0).max(1e6), output: z.number().min(0).max(1e6) }).strict(),
    )
    .optional(),
});
export type AgentSpecInput = z.infer<typeof agentSpecSchema>;

const OPENCODE_BACKENDS = ['acp', 'opencode_server', 'serve'] as const;

function opencodeBackendOf(value: (typeof OPENCODE_BACKENDS)[number] | undefined): Config['opencodeBackend'] {
  return value === 'serve' || value === 'opencode_server' ? 'opencode_server' : 'acp';
}

/**
 * A project's worktree settings (docs/worktree-setup.md): in the config file under `projects`, or
 * in the repository's `.boocoder.json` (whose commands run only once the user trusted the file).
 */
export const projectSettingsSchema = z
  .object({
    /** Shell command run in each new worktree before the agent starts. */
    setup: z.string().min(1).max(4096).optional(),
    /** Shell command that judges a contender's work (arenas). */
    check: z.string().min(1).max(4096).optional(),
    /** Patterns (.gitignore syntax) of ignored files copied from the checkout into each new worktree. */
    copy: z.array(z.string().min(1).max(1024)).max(256).optional(),
    setupTimeoutS: z.number().int().min(1).max(86_400).optional(),
    checkTimeoutS: z.number().int().min(1).max(86_400).optional(),
  })
  .strict();
export type ProjectSettingsInput = z.infer<typeof projectSettingsSchema>;
/** The config file's entry: the same settings, and whether the repository's own file is trusted. */
const projectConfigSchema = projectSettingsSchema.extend({ trustRepoFile: z.boolean().optional() }).strict();
export type ProjectConfigInput = z.infer<typeof projectConfigSchema>;
/** A task's budget: it is stopped (E_BUDGET_EXCEEDED) once its agent reports usage past either. */
export const budgetSchema = z
  .object({
    maxCost: z.number().min(0).max(1e9).optional(),
    maxTokens: z.number().int().min(0).max(1e15).optional(),
  })
  .strict();
export type Budget = z.infer<typeof budgetSchema>;

const fileSchema = z
  .object({
    /** Default budgets by project (its absolute root path, or "*" for every project). */
    budgets: z
      .record(z.string().min(1).max(4096), budgetSchema)
      .refine((b) => Object.keys(b).length <= 1000, 'at most 1000 budgets')
      .default({}),
    agents: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/), agentSpecSchema).default({}),
    /** Per repository (absolute path of its top-level folder): worktree settings. */
    projects: z.record(z.string().min(1).max(4096), projectConfigSchema).default({}),
    defaultAgent: z.string().max(64).optional(),
    permissions: z.enum(['auto', 'ask']).optional(),
    opencodeBackend: z.enum(OPENCODE_BACKENDS).optional(),
  })
  .strict();

const envSchema = z.object({
  BOOCODER_HOME: z.string().max(4096).optional(),
  BOOCODER_CONFIG: z.string().max(4096).optional(),
  DATABASE_URL: z.string().max(4096).optional(),
  BOOCODER_PG_DIR: z.string().max(4096).optional(),
  BOOCODER_PG_USER: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/)
    .optional(),
  BOOCODER_MACHINE_ID: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,63}$/)
    .optional(),
  BOOCODER_DB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'use lowercase letters, digits and _')
    .default('boocoder'),
  BOOCODER_HOST: z.string().max(255).default('127.0.0.1'),
  BOOCODER_PORT: int(0, 65535).default(7311),
  BOOCODER_TOKEN: z.string().min(16, 'BOOCODER_TOKEN must be at least 16 characters').max(512).optional(),
  BOOCODER_ALLOWED_ORIGINS: z.string().max(4096).default(''),
  BOOCODER_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  BOOCODER_CONCURRENCY: int(1, 64).default(4),
  BOOCODER_POLL_MS: int(50, 600_000).default(2000),
  BOOCODER_LEASE_MS: int(1000, 3_600_000).default(30_000),
  BOOCODER_MAX_ATTEMPTS: int(1, 100).default(3),
  BOOCODER_TASK_TIMEOUT_MS: int(1000, 86_400_000).default(1_800_000),
  BOOCODER_SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  BOOCODER_MAX_SESSIONS: int(1, 10_000).default(100),
  BOOCODER_SESSION_IDLE_MS: int(1000, 86_400_000).default(1_800_000),
  BOOCODER_SESSION_UNUSED_IDLE_MS: int(1000, 86_400_000).default(120_000),
  BOOCODER_MAX_QUEUED_PER_PROJECT: int(1, 1_000_000).default(1000),
  BOOCODER_SUBTASK_MAX_DEPTH: int(1, 20).default(3),
  BOOCODER_SUBTASK_MAX_CHILDREN: int(1, 1000).default(10),
  BOOCODER_DEFAULT_AGENT: z.string().max(64).optional(),
  BOOCODER_PERMISSIONS: z.enum(['auto', 'ask']).optional(),
  BOOCODER_OPENCODE_BACKEND: z.enum(OPENCODE_BACKENDS).optional(),
  BOOCODER_AGENT_IDLE_MS: int(100, 86_400_000).default(600_000),
  BOOCODER_AGENT_FIRST_IDLE_MS: int(100, 86_400_000).default(60_000),
  BOOCODER_MAX_WARM_AGENTS: int(0, 1000).default(4),
  BOOCODER_MAX_WARM_AGENT_MEMORY_MB: int(0, 1_048_576).default(2048),
  BOOCODER_CLAIM_AHEAD: z.enum(['0', '1']).default('0'),
  BOOCODER_WORKTREE_TTL_MS: int(60_000, 3_650 * 86_400_000).default(7 * 86_400_000),
});

export interface Config {
  home: string;
  configFile: string;
  databaseUrl?: string;
  /** The embedded PostgreSQL's folder; unset: `$BOOCODER_HOME/pg` (as root: /var/lib/boocoder/...). */
  pgDir?: string;
  /** The user the embedded PostgreSQL runs as when boocoder runs as root (postgres refuses root). */
  pgUser: string;
  /** The schema boocoder's tables live in (every connection's search_path). */
  dbSchema: string;
  /** This machine (machine-id.ts): a project is worked on only by servers on its machine. */
  machine: Machine;
  host: string;
  port: number;
  token?: string;
  allowedOrigins: readonly string[];
  logLevel: (typeof LOG_LEVELS)[number];
  concurrency: number;
  pollMs: number;
  leaseMs: number;
  maxAttempts: number;
  taskTimeoutMs: number;
  shutdownGraceMs: number;
  maxHttpSessions: number;
  httpSessionIdleMs: number;
  /**
   * The idle time of an HTTP session whose client never sent a request after initialize: such a
   * client most likely went away, and its slot is worth more to the next one (docs/warm-agents.md).
   */
  httpUnusedSessionIdleMs: number;
  maxQueuedPerProject: number;
  /** How deep sub-tasks may nest (a top-level task's children are depth 1) (docs/subtasks.md). */
  subtaskMaxDepth: number;
  /** How many sub-tasks one task may queue in all. */
  subtaskMaxChildren: number;
  /** a finished session's worktree is removed this long after its last task ended */
  worktreeTtlMs: number;
  defaultAgent: string;
  /** How long a warm agent session (live process + ACP session per chat and agent) stays idle. */
  agentIdleMs: number;
  /**
   * How long a warm agent whose chat has had one task only stays idle: most chats never get a
   * follow-up, and an idle agent holds hundreds of MB. A follow-up earns the chat agentIdleMs.
   */
  agentFirstIdleMs: number;
  /** Most live warm agent processes; beyond it the least recently used idle one is closed (0: none kept). */
  maxWarmAgents: number;
  /** Most memory (RSS of their process groups, from /proc) all warm agents together may hold; only idle ones are closed for it; 0: no cap. */
  maxWarmAgentMemoryBytes: number;
  /**
   * How agents' permission requests are answered: `auto` by the default policy (inside the
   * worktree only), `ask` parks them for a human (list_permission_requests, answer_permission).
   */
  permissions: 'auto' | 'ask';
  /**
   * The execution path of opencode tasks that name none: `acp` (an `opencode acp` process per chat)
   * or `opencode_server` (one shared `opencode serve` for every worktree). `serve` is read as
   * `opencode_server`, its spelling before execution paths had one name.
   */
  opencodeBackend: 'acp' | 'opencode_server';
  /**
   * Claiming ahead and batched finishes (src/dispatcher/claim-ahead.ts): only a queue of very short
   * jobs gains from them, so they are off unless BOOCODER_CLAIM_AHEAD=1.
   */
  claimAhead: boolean;
  agents: Readonly<Record<string, AgentSpecInput>>;
  /** Worktree settings per repository path, from the config file (trusted: the user wrote it). */
  projects: Readonly<Record<string, ProjectConfigInput>>;
  /** Default task budgets by project root path, "*" for every project (new_task's own win). */
  budgets: Readonly<Record<string, Budget>>;
  /** The environment agents and git are started from (a copy: nothing writes back). */
  childEnv: Readonly<Record<string, string>>;
}

function describe(issues: z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
}

function readConfigFile(path: string): z.infer<typeof fileSchema> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { agents: {}, projects: {}, budgets: {} };
    throw new BoocoderError('E_CONFIG', `cannot read the config file ${path}`, {}, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BoocoderError('E_CONFIG', `the config file ${path} is not valid JSON`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success)
    throw new BoocoderError('E_CONFIG', `config file ${path}: ${describe(parsed.error.issues)}`);
  return parsed.data;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success)
    throw new BoocoderError('E_CONFIG', `invalid environment: ${describe(parsed.error.issues)}`);
  const e = parsed.data;
  const home = resolve(e.BOOCODER_HOME ?? join(env.HOME ?? homedir(), '.boocoder'));
  const configFile = e.BOOCODER_CONFIG
    ? isAbsolute(e.BOOCODER_CONFIG)
      ? e.BOOCODER_CONFIG
      : resolve(e.BOOCODER_CONFIG)
    : join(home, 'config.json');
  const file = readConfigFile(configFile);
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  const config: Config = {
    home,
    configFile,
    databaseUrl: e.DATABASE_URL || undefined,
    pgDir: e.BOOCODER_PG_DIR ? resolve(e.BOOCODER_PG_DIR) : undefined,
    pgUser: e.BOOCODER_PG_USER ?? 'nobody',
    dbSchema: e.BOOCODER_DB_SCHEMA,
    machine: resolveMachine(e.BOOCODER_MACHINE_ID, env.HOME ?? homedir()),
    host: e.BOOCODER_HOST,
    port: e.BOOCODER_PORT,
    token: e.BOOCODER_TOKEN,
    allowedOrigins: e.BOOCODER_ALLOWED_ORIGINS.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    logLevel: e.BOOCODER_LOG_LEVEL,
    concurrency: e.BOOCODER_CONCURRENCY,
    pollMs: e.BOOCODER_POLL_MS,
    leaseMs: e.BOOCODER_LEASE_MS,
    maxAttempts: e.BOOCODER_MAX_ATTEMPTS,
    taskTimeoutMs: e.BOOCODER_TASK_TIMEOUT_MS,
    shutdownGraceMs: e.BOOCODER_SHUTDOWN_GRACE_MS,
    maxHttpSessions: e.BOOCODER_MAX_SESSIONS,
    httpSessionIdleMs: e.BOOCODER_SESSION_IDLE_MS,
    httpUnusedSessionIdleMs: e.BOOCODER_SESSION_UNUSED_IDLE_MS,
    maxQueuedPerProject: e.BOOCODER_MAX_QUEUED_PER_PROJECT,
    subtaskMaxDepth: e.BOOCODER_SUBTASK_MAX_DEPTH,
    subtaskMaxChildren: e.BOOCODER_SUBTASK_MAX_CHILDREN,
    worktreeTtlMs: e.BOOCODER_WORKTREE_TTL_MS,
    defaultAgent: e.BOOCODER_DEFAULT_AGENT ?? file.defaultAgent ?? 'opencode',
    agentIdleMs: e.BOOCODER_AGENT_IDLE_MS,
    agentFirstIdleMs: e.BOOCODER_AGENT_FIRST_IDLE_MS,
    maxWarmAgents: e.BOOCODER_MAX_WARM_AGENTS,
    maxWarmAgentMemoryBytes: e.BOOCODER_MAX_WARM_AGENT_MEMORY_MB * 1024 * 1024,
    permissions: e.BOOCODER_PERMISSIONS ?? file.permissions ?? 'auto',
    opencodeBackend: opencodeBackendOf(e.BOOCODER_OPENCODE_BACKEND ?? file.opencodeBackend),
    claimAhead: e.BOOCODER_CLAIM_AHEAD === '1',
    agents: Object.freeze(file.agents),
    projects: Object.freeze(file.projects),
    budgets: Object.freeze(file.budgets),
    childEnv: Object.freeze(childEnv),
    ...overrides,
  };
  return Object.freeze(config);
}

/** True for addresses only this machine can reach: a token is optional there, required elsewhere. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
