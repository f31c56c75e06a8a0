/**
 * Headless command lines and the execution-path choice: pure policy. The prompt never appears in
 * argv (it goes on stdin), and values that do (model, session id) cannot pose as options.
 */
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/agents/headless/run.js';
import {
  buildHeadlessCommand,
  canResumeHeadless,
  reportsSessionUsageTotals,
} from '../../src/agents/headless/specs.js';
import { resolveLaunchSpec } from '../../src/agents/launch-specs.js';
import { isBoocoderError } from '../../src/errors.js';
import { chooseExecutionPath } from '../../src/services/execution-path.js';

const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('buildHeadlessCommand', () => {
  it('builds each built-in CLI command line, model and resume as single --name=value arguments', () => {
    const r = { model: 'scripted/other-model', resumeSessionId: 'ses_1' };
    const of = (agent: string) => buildHeadlessCommand(resolveLaunchSpec(agent), r);
    expect(of('opencode')).toMatchObject({
      command: 'opencode',
      args: ['run', '--format', 'json', '--model=scripted/other-model', '--session=ses_1'],
    });
    expect(of('claude').command).toBe('claude');
    expect(of('claude').args).toEqual(
      expect.arrayContaining(['-p', 'stream-json', '--verbose', 'acceptEdits', '--resume=ses_1']),
    );
    expect(of('codex')).toMatchObject({ command: 'codex' });
    expect(of('codex').args.slice(0, 3)).toEqual(['exec', 'resume', '--json']);
    expect(of('codex').args.slice(-3)).toEqual(['--', 'ses_1', '-']);
    expect(of('gemini').args).toEqual(expect.arrayContaining(['stream-json', '--yolo', '--resume=ses_1']));
    expect(of('gemini').args).not.toContain('--acp');
    expect(of('qwen').args).toEqual(expect.arrayContaining(['stream-json', '--yolo', '--resume=ses_1']));
    expect(canResumeHeadless('qwen')).toBe(true);
    // Codex and Qwen report the session's running totals; boocoder records each run's difference.
    expect(['opencode', 'claude', 'codex', 'gemini', 'qwen'].filter(reportsSessionUsageTotals)).toEqual([
      'codex',
      'qwen',
    ]);
  });

  it('keeps configured ACP arguments of gemini/qwen (auth flags) but not the ACP switch', () => {
    const spec = resolveLaunchSpec('qwen', {
      qwen: { command: '/opt/qwen', args: ['--acp', '--auth-type', 'openai'], env: {} },
    });
    const cmd = buildHeadlessCommand(spec, {});
    expect(cmd.command).toBe('/opt/qwen');
    expect(cmd.args).toEqual(['--auth-type', 'openai', '--output-format', 'stream-json', '--yolo']);
  });

  it("keeps codex-acp's -c overrides for codex exec, and nothing else of its arguments", () => {
    const spec = resolveLaunchSpec('codex', {
      codex: {
        command: '/opt/codex-acp',
        args: ['-c', 'model="m"', '--verbose', '--config', 'x=1'],
        env: {},
      },
    });
    const cmd = buildHeadlessCommand(spec, {});
    expect(cmd.command).toBe('codex');
    expect(cmd.args).toEqual([
      'exec',
      '--json',
      '--skip-git-repo-check',
      '-c',
      'sandbox_mode="danger-full-access"',
      '-c',
      'approval_policy="never"',
      '-c',
      'model="m"',
      '-c',
      'x=1',
      '--',
      '-',
    ]);
  });

  it.each(['--dangerously-skip-permissions', '-x', 'a b', 'm\nx', '.hidden'])(
    'refuses model %j: a value that could pose as an option never reaches argv',
    (model) => {
      const err = caught(() => buildHeadlessCommand(resolveLaunchSpec('claude'), { model }));
      expect(isBoocoderError(err, 'E_INVALID_INPUT')).toBe(true);
      const resume = caught(() =>
        buildHeadlessCommand(resolveLaunchSpec('codex'), { resumeSessionId: model }),
      );
      expect(isBoocoderError(resume, 'E_INVALID_INPUT')).toBe(true);
    },
  );

  it('refuses a custom ACP agent: it has no headless mode', () => {
    const spec = resolveLaunchSpec('mine', { mine: { command: 'my-agent', args: [], env: {} } });
    const err = caught(() => buildHeadlessCommand(spec, {}));
    expect(isBoocoderError(err, 'E_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(/no headless mode/);
  });
});

describe('chooseExecutionPath', () => {
  const auto = { opencodeBackend: 'acp' as const, permissions: 'auto' as const };
  const serve = { opencodeBackend: 'serve' as const, permissions: 'auto' as const };

  it('defaults as before: opencode on serve when configured so, everything else over ACP', () => {
    expect(chooseExecutionPath(serve, 'opencode', undefined)).toBe('native');
    expect(chooseExecutionPath(serve, 'gemini', undefined)).toBe('acp');
    expect(chooseExecutionPath(auto, 'opencode', undefined)).toBe('acp');
  });

  it('maps the requested paths to the stored ones', () => {
    expect(chooseExecutionPath(serve, 'opencode', 'acp')).toBe('acp');
    expect(chooseExecutionPath(auto, 'opencode', 'serve')).toBe('native');
    expect(chooseExecutionPath(auto, 'codex', 'headless')).toBe('pty');
  });

  it.each([
    [auto, 'gemini', 'serve', /for opencode only/],
    [auto, 'mine', 'headless', /no headless mode/],
    [{ ...auto, permissions: 'ask' as const }, 'opencode', 'headless', /cannot ask for permissions/],
    [auto, 'opencode', 'pty', /unknown execution_path/],
  ])('refuses %#: %s with %s', (config, agent, path, message) => {
    const err = caught(() => chooseExecutionPath(config, agent, path));
    expect(isBoocoderError(err, 'E_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe('LineSplitter', () => {
  it('splits across chunks, keeps multi-byte characters whole, and drops an over-long line', () => {
    const lines: string[] = [];
    const split = new LineSplitter(16, (l) => lines.push(l));
    const euro = Buffer.from('€');
    split.push(Buffer.concat([Buffer.from('a\nb'), euro.subarray(0, 1)]));
    split.push(Buffer.concat([euro.subarray(1), Buffer.from('\n')]));
    split.push(Buffer.from('x'.repeat(10)));
    split.push(Buffer.from(`${'x'.repeat(10)}\nafter`));
    split.end();
    expect(lines).toEqual(['a', 'b€', 'after']);
  });
});
