/**
 * How a task's agent runs, chosen when the task is queued (new_task `execution_path`) and stored
 * on the task (tasks.execution_path):
 *   acp      → 'acp'    the agent as an ACP server over stdio, kept warm between a chat's tasks
 *   headless → 'pty'    one headless CLI run per task printing JSON lines, resumed by session id
 *   serve    → 'native' opencode's shared `opencode serve` over HTTP (opencode only)
 */
import type { StoredExecutionPath } from '../agents/backends.js';
import { HEADLESS_AGENT_NAMES, hasHeadlessSpec } from '../agents/headless/specs.js';
import type { Config } from '../config.js';
import { BoocoderError } from '../errors.js';

export const EXECUTION_PATH_CHOICES = ['acp', 'headless', 'serve'] as const;
export type ExecutionPathChoice = (typeof EXECUTION_PATH_CHOICES)[number];

/**
 * The stored execution path for a task of `agent`. Without a request: opencode on its shared
 * server when the config says so (opencodeBackend serve), every other agent over ACP. Throws
 * E_INVALID_INPUT for a request the agent or the permission policy cannot honour.
 */
export function chooseExecutionPath(
  config: Pick<Config, 'opencodeBackend' | 'permissions'>,
  agent: string,
  requested: string | undefined,
): StoredExecutionPath {
  if (requested === undefined)
    return agent === 'opencode' && config.opencodeBackend === 'serve' ? 'native' : 'acp';
  if (requested === 'acp') return 'acp';
  if (requested === 'serve') {
    if (agent !== 'opencode') {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `execution_path "serve" is for opencode only, not agent "${agent}"; use "acp" or "headless"`,
      );
    }
    return 'native';
  }
  if (requested === 'headless') {
    if (!hasHeadlessSpec(agent)) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `agent "${agent}" has no headless mode (only ${HEADLESS_AGENT_NAMES.join(', ')}); use execution_path "acp"`,
      );
    }
    // A headless run cannot park a permission request for a human to answer.
    if (config.permissions === 'ask') {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        'execution_path "headless" cannot ask for permissions, and the server runs the `ask` permission policy; use "acp"',
      );
    }
    return 'pty';
  }
  throw new BoocoderError(
    'E_INVALID_INPUT',
    `unknown execution_path; use one of ${EXECUTION_PATH_CHOICES.join(', ')}`,
  );
}
