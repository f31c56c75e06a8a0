/**
 * How each built-in agent runs one turn as a headless process that prints JSON lines (the `pty`
 * execution path): its program, its arguments, and the parser of its output. A custom ACP agent
 * from the config file has no headless mode that boocoder knows of, so it has no spec here.
 *
 * The prompt always goes in on stdin, never on the command line: it is user text, and as an
 * argument one starting with `-` would be read as an option (`--dangerously-skip-permissions`...)
 * and opencode re-quotes arguments holding spaces. Nothing here goes through a shell either.
 */
import { BoocoderError } from '../../errors.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import {
  type HeadlessParser,
  parseClaudeEvent,
  parseCodexEvent,
  parseGeminiEvent,
  parseOpencodeEvent,
  parseQwenEvent,
} from './parsers.js';

export interface HeadlessRequest {
  /** Model in the agent's own naming (opencode: provider/model). */
  model?: string;
  /** The agent's own session id from an earlier turn of the same chat, to continue it. */
  resumeSessionId?: string;
}

interface HeadlessSpec {
  /**
   * The headless CLI when it is another program than the ACP command (claude-agent-acp and
   * codex-acp are adapters around `claude` and `codex`); absent when the configured or built-in
   * ACP command is the CLI itself, which then runs with its ACP arguments swapped for these.
   */
  program?: string;
  /**
   * The full argument list. `acp`: the configured ACP arguments that also mean something to the
   * headless CLI (qwen's auth flags, codex's `-c key=value` overrides); none for the others.
   */
  args(r: HeadlessRequest, acp: readonly string[]): string[];
  parse: HeadlessParser;
  /** True when a turn only succeeds with an explicit success line; else a clean exit suffices. */
  needsResultLine: boolean;
}

/** `--name=value` in one argument: a value can never be taken for the next option. */
const opt = (name: string, value: string | undefined): string[] => (value ? [`--${name}=${value}`] : []);
/** Everything but the switch that turns on ACP mode. */
const withoutAcpSwitch = (acp: readonly string[]) =>
  acp.filter((arg) => arg !== '--acp' && arg !== '--experimental-acp');

/** Only `-c key=value` pairs: codex-acp and `codex exec` read the same config overrides. */
function configOverrides(acp: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < acp.length - 1; i += 1) {
    const flag = acp[i];
    if (flag === '-c' || flag === '--config') kept.push('-c', acp[++i] as string);
  }
  return kept;
}

const SPECS: Readonly<Record<string, HeadlessSpec>> = {
  opencode: {
    args: (r) => ['run', '--format', 'json', ...opt('model', r.model), ...opt('session', r.resumeSessionId)],
    parse: parseOpencodeEvent,
    needsResultLine: false,
  },
  claude: {
    program: 'claude',
    // acceptEdits: file edits in the working directory are allowed without asking (there is no
    // one to ask in -p mode); anything else the policy would ask about is refused, not bypassed.
    args: (r) => [
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--permission-mode',
      'acceptEdits',
      ...opt('model', r.model),
      ...opt('resume', r.resumeSessionId),
    ],
    parse: parseClaudeEvent,
    needsResultLine: true,
  },
  codex: {
    program: 'codex',
    // No bubblewrap on the machines boocoder targets, so workspace-write cannot start its sandbox:
    // codex runs unsandboxed, as the user, like every other agent here (the same choice as for
    // codex-acp). Approvals are off: a headless run has no one to ask. `-` reads the prompt from
    // stdin; `--` ends the options before the positionals.
    args: (r, acp) => [
      'exec',
      ...(r.resumeSessionId ? ['resume'] : []),
      '--json',
      '--skip-git-repo-check',
      '-c',
      'sandbox_mode="danger-full-access"',
      '-c',
      'approval_policy="never"',
      ...configOverrides(acp),
      ...opt('model', r.model),
      '--',
      ...(r.resumeSessionId ? [r.resumeSessionId] : []),
      '-',
    ],
    parse: parseCodexEvent,
    needsResultLine: true,
  },
  gemini: {
    // With the prompt on stdin and no -p, Gemini runs non-interactively. --skip-trust: the worktree
    // is boocoder's, trusted for this run only.
    args: (r, acp) => [
      ...withoutAcpSwitch(acp),
      '--output-format',
      'stream-json',
      '--yolo',
      '--skip-trust',
      ...opt('model', r.model),
      ...opt('resume', r.resumeSessionId),
    ],
    parse: parseGeminiEvent,
    needsResultLine: true,
  },
  qwen: {
    // Checked with Qwen Code 0.24.4 (the opt-in suite's): the prompt on stdin, `--resume=<id>`.
    args: (r, acp) => [
      ...withoutAcpSwitch(acp),
      '--output-format',
      'stream-json',
      '--yolo',
      ...opt('model', r.model),
      ...opt('resume', r.resumeSessionId),
    ],
    parse: parseQwenEvent,
    needsResultLine: true,
  },
};

export const HEADLESS_AGENT_NAMES: readonly string[] = Object.keys(SPECS);

export function hasHeadlessSpec(agent: string): boolean {
  return Object.hasOwn(SPECS, agent);
}

/**
 * Codex's turn.completed and Qwen's result carry the session's running totals, not the run's (a
 * resumed run that made one 120-token request reports 240 when the first run made one too).
 */
export function reportsSessionUsageTotals(agent: string): boolean {
  return agent === 'codex' || agent === 'qwen';
}

/** Whether the agent's headless mode can continue an earlier session. */
export function canResumeHeadless(agent: string): boolean {
  return hasHeadlessSpec(agent);
}

/**
 * Values that land in argv: blocks an id or model name posing as an option (`-x`, or a value the
 * `--name=value` form would still split on a newline in some parsers) and control characters.
 */
const SAFE_VALUE = /^[A-Za-z0-9_][A-Za-z0-9._:/@+-]{0,199}$/;

function assertSafeValue(what: string, value: string | undefined): void {
  if (value !== undefined && !SAFE_VALUE.test(value)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `${what} must be letters, digits and . _ : / @ + - (not starting with - or .) for the headless path`,
    );
  }
}

export interface HeadlessCommand {
  command: string;
  args: string[];
  parse: HeadlessParser;
  needsResultLine: boolean;
}

/** The program and arguments for one headless turn of `launch`'s agent; the prompt goes on stdin. */
export function buildHeadlessCommand(launch: AgentLaunchSpec, r: HeadlessRequest): HeadlessCommand {
  const spec = Object.hasOwn(SPECS, launch.name) ? SPECS[launch.name] : undefined;
  if (!spec) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${launch.name}" has no headless mode; use execution_path "acp" (headless: ${HEADLESS_AGENT_NAMES.join(', ')})`,
    );
  }
  assertSafeValue('model', r.model);
  assertSafeValue('the agent session id', r.resumeSessionId);
  return {
    command: spec.program ?? launch.command,
    args: spec.args(r, launch.args),
    parse: spec.parse,
    needsResultLine: spec.needsResultLine,
  };
}
