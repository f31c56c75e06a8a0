/**
 * How a task's agent runs, chosen when the task is queued (new_task `execution_path`) and stored
 * on the task (tasks.execution_path) under the same name:
 *   acp              the agent as an ACP server over stdio, kept warm between a chat's tasks
 *   pty              one headless CLI run per task printing JSON lines, resumed by session id
 *   qwen             Qwen Code's own path: its headless stream-json run (a pty run of qwen is stored so)
 *   opencode_server  opencode's shared `opencode serve` over HTTP (opencode only)
 *   native           boocoder's own agent (`boocode`), its model loop in this process; the only path of it
 * The spellings
 * of earlier versions stay accepted as aliases: `headless` for pty, `serve` for opencode_server.
 */
import { HEADLESS_AGENT_NAMES, hasHeadlessSpec } from '../agents/headless/specs.js';
import { NATIVE_AGENT_NAME } from '../agents/launch-specs.js';
import type { Config } from '../config.js';
import type { ExecutionPath } from '../db/task-inserts.js';
import { BoocoderError } from '../errors.js';

export const EXECUTION_PATH_CHOICES = ['acp', 'pty', 'qwen', 'opencode_server', 'native'] as const;
/** Earlier spellings new_task still accepts, and the path each names. */
export const EXECUTION_PATH_ALIASES: Readonly<Record<string, ExecutionPath>> = {
  headless: 'pty',
  serve: 'opencode_server',
};

function headlessPath(config: Pick<Config, 'permissions'>, agent: string, requested: string): ExecutionPath {
  if (!hasHeadlessSpec(agent)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${agent}" has no headless mode (only ${HEADLESS_AGENT_NAMES.join(', ')}); use execution_path "acp"`,
    );
  }
  if (requested === 'qwen' && agent !== 'qwen') {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `execution_path "qwen" is for agent qwen only, not "${agent}"; use "pty" for a headless run`,
    );
  }
  // A headless run cannot park a permission request for a human to answer.
  if (config.permissions === 'ask') {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `execution_path "${requested}" cannot ask for permissions, and the server runs the \`ask\` permission policy; use "acp"`,
    );
  }
  return agent === 'qwen' ? 'qwen' : 'pty';
}

/**
 * The stored execution path for a task of `agent`. Without a request: opencode on its shared
 * server when the config says so (opencodeBackend opencode_server), every other agent over ACP.
 * Throws E_INVALID_INPUT for a request the agent or the permission policy cannot honour.
 */
export function chooseExecutionPath(
  config: Pick<Config, 'opencodeBackend' | 'permissions'>,
  agent: string,
  requested: string | undefined,
): ExecutionPath {
  const path = requested === undefined ? undefined : (EXECUTION_PATH_ALIASES[requested] ?? requested);
  // The native agent has no process to run any other way; no other agent runs in-process.
  if (agent === NATIVE_AGENT_NAME || path === 'native') {
    if (agent === NATIVE_AGENT_NAME && (path === undefined || path === 'native')) return 'native';
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `execution_path "native" runs agent ${NATIVE_AGENT_NAME} only, and ${NATIVE_AGENT_NAME} runs on no other path; leave execution_path out`,
    );
  }
  if (requested === undefined)
    return agent === 'opencode' && config.opencodeBackend === 'opencode_server' ? 'opencode_server' : 'acp';
  if (path === 'acp') return 'acp';
  if (path === 'opencode_server') {
    if (agent !== 'opencode') {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `execution_path "${requested}" is for opencode only, not agent "${agent}"; use "acp" or "pty"`,
      );
    }
    return 'opencode_server';
  }
  if (path === 'pty' || path === 'qwen') return headlessPath(config, agent, requested);
  throw new BoocoderError(
    'E_INVALID_INPUT',
    `unknown execution_path; use one of ${EXECUTION_PATH_CHOICES.join(', ')} (or the aliases headless, serve)`,
  );
}
