/**
 * Headless command lines, the execution-path choice and its config spelling: pure policy. The prompt never appears in
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
import { loadConfig } from '../../src/config.js';
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
  const server = { opencodeBackend: 'opencode_server' as const, permissions: 'auto' as const };

  it('defaults as before: opencode on its shared server when configured so, everything else over ACP', () => {
    expect(chooseExecutionPath(server, 'opencode', undefined)).toBe('opencode_server');
    expect(chooseExecutionPath(server, 'gemini', undefined)).toBe('acp');
    expect(chooseExecutionPath(auto, 'opencode', undefined)).toBe('acp');
  });

  it('stores each path under the name it is requested by', () => {
    expect(chooseExecutionPath(server, 'opencode', 'acp')).toBe('acp');
    expect(chooseExecutionPath(auto, 'opencode', 'opencode_server')).toBe('opencode_server');
    expect(chooseExecutionPath(auto, 'codex', 'pty')).toBe('pty');
    expect(chooseExecutionPath(auto, 'qwen', 'qwen')).toBe('qwen');
    expect(chooseExecutionPath(auto, 'boocode', undefined)).toBe('native');
    expect(chooseExecutionPath({ ...auto, permissions: 'ask' }, 'boocode', 'native')).toBe('native');
  });

  it('takes the earlier spellings as aliases, and a headless run of Qwen Code as its own path', () => {
    expect(chooseExecutionPath(auto, 'opencode', 'serve')).toBe('opencode_server');
    expect(chooseExecutionPath(auto, 'codex', 'headless')).toBe('pty');
    expect(chooseExecutionPath(auto, 'qwen', 'headless')).toBe('qwen');
    expect(chooseExecutionPath(auto, 'qwen', 'pty')).toBe('qwen');
  });

  it.each([
    [auto, 'gemini', 'serve', /for opencode only/],
    [auto, 'gemini', 'opencode_server', /for opencode only/],
    [auto, 'mine', 'headless', /no headless mode/],
    [auto, 'codex', 'qwen', /for agent qwen only/],
    [{ ...auto, permissions: 'ask' as const }, 'opencode', 'headless', /cannot ask for permissions/],
    [{ ...auto, permissions: 'ask' as const }, 'qwen', 'qwen', /cannot ask for permissions/],
    [auto, 'opencode', 'warp', /unknown execution_path/],
    // `native` is boocoder's own agent's path, and its only one.
    [auto, 'opencode', 'native', /runs agent boocode only/],
    [auto, 'boocode', 'acp', /runs on no other path/],
  ])('refuses %#: %s with %s', (config, agent, path, message) => {
    const err = caught(() => chooseExecutionPath(config, agent, path));
    expect(isBoocoderError(err, 'E_INVALID_INPUT')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe('opencodeBackend', () => {
  // No config file there: only the environment counts.
  const backendOf = (value: string) =>
    loadConfig({ BOOCODER_HOME: '/nonexistent/boocoder-home', BOOCODER_OPENCODE_BACKEND: value })
      .opencodeBackend;

  it('is spelled as the execution path, and still reads the earlier `serve`', () => {
    expect(backendOf('opencode_server')).toBe('opencode_server');
    expect(backendOf('serve')).toBe('opencode_server');
    expect(backendOf('acp')).toBe('acp');
    expect(() => backendOf('native')).toThrow(/BOOCODER_OPENCODE_BACKEND/);
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
