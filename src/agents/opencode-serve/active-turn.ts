/**
 * One prompt turn as the opencode server driver tracks it (server.ts): its accounting record,
 * its permission answers, and how it ends; plus the result a finished turn reports.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { BoocoderError } from '../../errors.js';
import type { PermissionResponder } from '../../permissions/responder.js';
import type { AgentTurnResult, TurnStopReason } from '../agent-backend.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import type { OpencodeTurnRecord } from './events.js';

export interface ActiveTurn {
  record: OpencodeTurnRecord;
  directory: string;
  /** Answers the turn's permission requests; ended (waiting requests refused) with the turn. */
  permissions: PermissionResponder;
  cancelling: boolean;
  done: Promise<void>;
  finish(): void;
  fail(err: BoocoderError): void;
}

export async function checkedDirectory(directory: string): Promise<string> {
  const info = isAbsolute(directory) ? await stat(directory).catch(() => undefined) : undefined;
  if (!info?.isDirectory())
    throw new BoocoderError('E_INVALID_INPUT', 'the agent working directory does not exist');
  return resolve(directory);
}

export function activeTurn(
  record: OpencodeTurnRecord,
  directory: string,
  permissions: PermissionResponder,
): ActiveTurn {
  const turn = { record, directory, permissions, cancelling: false } as ActiveTurn;
  turn.done = new Promise<void>((finish, fail) => Object.assign(turn, { finish, fail }));
  turn.done.catch(() => {});
  return turn;
}

/** What a turn reports; throws E_AGENT_FAILED for a turn that ended with an error of the agent. */
export function turnResult(
  spec: AgentLaunchSpec,
  version: string,
  turn: ActiveTurn,
  forced?: TurnStopReason,
): AgentTurnResult {
  const { record } = turn;
  const stopReason = forced ?? record.stopReason();
  if (!stopReason) {
    const message = `agent "${spec.name}" ended the turn with ${record.error?.name}; details hold its message`;
    throw new BoocoderError('E_AGENT_FAILED', message, { agentError: record.error?.message });
  }
  const output = record.output();
  return {
    stopReason,
    agentSessionId: record.root,
    outputText: output.text,
    outputTruncated: output.truncated,
    updates: record.updates,
    usage: record.usage(),
    agentInfo: { name: 'opencode', version },
  };
}
