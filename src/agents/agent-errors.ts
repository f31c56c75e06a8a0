/**
 * The errors an agent run ends with. Messages are shown to the client's model, so they say what
 * to do and leave out anything the agent printed: stderr and agent error texts can carry host
 * paths, tokens or prompt content, and go in `details` (kept in the server log and the task row).
 */
import type { RequestError } from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../errors.js';
import type { AgentLaunchSpec } from './launch-specs.js';

export interface ExitStatus {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** Spawn failed: ENOENT means not installed (E_AGENT_NOT_FOUND), anything else E_AGENT_FAILED. */
export function agentSpawnFailed(spec: AgentLaunchSpec, err: unknown): BoocoderError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    const where = spec.command.startsWith('/')
      ? 'the configured command path does not exist'
      : `"${spec.command}" was not found on PATH`;
    const install = spec.installHint ? `install it (${spec.installHint}) or ` : '';
    return new BoocoderError(
      'E_AGENT_NOT_FOUND',
      `agent "${spec.name}" is not installed: ${where}; ${install}set agents.${spec.name}.command in the config file`,
      { errno: code },
      { cause: err },
    );
  }
  return new BoocoderError(
    'E_AGENT_FAILED',
    `agent "${spec.name}" could not be started (${code ?? 'spawn error'}); check that its command is executable`,
    { errno: code ?? null },
    { cause: err },
  );
}

/** The agent answered a request with a JSON-RPC error. */
export function agentRejected(spec: AgentLaunchSpec, phase: string, err: RequestError): BoocoderError {
  const details = { phase, rpcCode: err.code, agentError: String(err.message).slice(0, 2000) };
  if (err.code === -32000) {
    return new BoocoderError(
      'E_AGENT_FAILED',
      `agent "${spec.name}" needs authentication: give it an API key through agents.${spec.name}.env in the config file`,
      details,
    );
  }
  return new BoocoderError(
    'E_AGENT_FAILED',
    `agent "${spec.name}" answered ${phase} with an error (JSON-RPC ${err.code}); details hold its message`,
    details,
  );
}

/** The process died or closed its end of the ACP connection. */
export function agentExited(
  spec: AgentLaunchSpec,
  phase: string,
  status: ExitStatus | undefined,
  stderrTail: string[],
  cause: unknown,
): BoocoderError {
  const how = !status
    ? 'closed its ACP connection'
    : status.signal
      ? `was killed by ${status.signal}`
      : `exited with code ${status.exitCode}`;
  return new BoocoderError(
    'E_AGENT_FAILED',
    `agent "${spec.name}" ${how} during ${phase}; details hold the end of its stderr`,
    { phase, exitCode: status?.exitCode ?? null, signal: status?.signal ?? null, stderrTail },
    { cause },
  );
}

export function agentTimedOut(
  spec: AgentLaunchSpec,
  timeoutMs: number,
  endedCleanly: boolean,
): BoocoderError {
  return new BoocoderError(
    'E_AGENT_TIMEOUT',
    `agent "${spec.name}" did not finish within ${timeoutMs} ms and was stopped; retry with a smaller task or a longer timeout`,
    { timeoutMs, endedCleanly },
  );
}
