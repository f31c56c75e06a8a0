/**
 * The pre-session auth step: after `initialize` and before `session/new`, select the login an
 * agent should use with ACP `authenticate`. codex-acp refuses `session/new` ("Authentication
 * required", -32000) on its built-in OpenAI provider until the client picks a method, even with
 * OPENAI_API_KEY set; `authenticate {methodId: "openai-api-key"}` makes it use that key.
 *
 * The step runs only when it can help and cannot hurt:
 * - the launch spec names a method (AgentLaunchSpec.authMethod) and the agent advertises it;
 * - an env-var method's variables are all set in the agent's environment (otherwise there is
 *   nothing to log in with, and session/new reports "needs authentication" truthfully);
 * - the file where the agent saves that login (AgentLaunchSpec.authLoginFile) is not a symlink.
 *   agent-env.ts links the user's own login (e.g. a ChatGPT login in ~/.codex/auth.json) into the
 *   isolated home, and codex-acp writes the API key THROUGH that link: authenticating would
 *   silently replace the user's real login with the key. Such a user is logged in already.
 */
import { lstatSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import * as acp from '@agentclientprotocol/sdk/unstable';
import type { AgentLaunchSpec } from '../launch-specs.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The variables an `env_var` auth method needs (a type newer than the SDK's schema: read loosely). */
function requiredVars(method: unknown): string[] {
  const vars = (method as { vars?: unknown }).vars;
  if (!Array.isArray(vars)) return [];
  return vars.flatMap((v) => (typeof v?.name === 'string' ? [v.name] : []));
}

function loginFileIsLinked(spec: AgentLaunchSpec, env: Env): boolean {
  const where = spec.authLoginFile;
  const dir = where ? env[where.dirEnv] : undefined;
  if (!where || !dir || !isAbsolute(dir)) return false;
  return lstatSync(join(dir, where.file), { throwIfNoEntry: false })?.isSymbolicLink() === true;
}

/** The method id to authenticate with before session/new, or undefined to skip the step. Pure but for one lstat. */
export function chooseAuthMethod(
  spec: AgentLaunchSpec,
  init: acp.InitializeResponse,
  env: Env,
): string | undefined {
  if (!spec.authMethod) return undefined;
  const method = (init.authMethods ?? []).find((m) => m.id === spec.authMethod);
  if (!method) return undefined;
  if (!requiredVars(method).every((name) => Boolean(env[name]))) return undefined;
  if (loginFileIsLinked(spec, env)) return undefined;
  return method.id;
}

/**
 * Performs the step when chooseAuthMethod says so; returns the method used, if any. A refusal
 * rejects with the agent's acp.RequestError, which callers report like a refused session/new.
 */
export async function authenticateBeforeSession(
  agent: acp.ClientContext,
  spec: AgentLaunchSpec,
  init: acp.InitializeResponse,
  env: Env,
  untilStopped: <T>(work: Promise<T>) => Promise<T>,
): Promise<string | undefined> {
  const methodId = chooseAuthMethod(spec, init, env);
  if (!methodId) return undefined;
  await untilStopped(agent.request(acp.methods.agent.authenticate, { methodId }));
  return methodId;
}
