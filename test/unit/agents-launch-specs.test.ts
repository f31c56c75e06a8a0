import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AGENT_NAME_PATTERN,
  isAcceptableCommand,
  listLaunchSpecs,
  resolveLaunchSpec,
} from '../../src/agents/launch-specs.js';
import type { AgentSpecInput } from '../../src/config.js';
import { isBoocoderError } from '../../src/errors.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isBoocoderError(err) ? err.code : 'not-a-BoocoderError';
  }
  return undefined;
}

const custom = (command: string, extra: Partial<AgentSpecInput> = {}): AgentSpecInput => ({
  command,
  args: [],
  env: {},
  ...extra,
});

describe('built-in launch specs', () => {
  it.each([
    ['opencode', 'opencode', ['acp'], ['--version']],
    ['claude', 'claude-agent-acp', [], undefined],
    ['codex', 'codex-acp', [], undefined],
    ['gemini', 'gemini', ['--acp'], ['--version']],
    ['qwen', 'qwen', ['--acp'], ['--version']],
  ])('%s runs %s %j', (name, command, args, versionArgs) => {
    const spec = resolveLaunchSpec(name);
    expect(spec).toMatchObject({ name, command, args, env: {} });
    expect(spec.versionArgs).toEqual(versionArgs);
    expect(spec.installHint).toMatch(/^npm install -g /);
  });

  it('returns copies: mutating a resolved spec does not change the next one', () => {
    (resolveLaunchSpec('opencode').args as string[]).push('--evil');
    expect(resolveLaunchSpec('opencode').args).toEqual(['acp']);
  });
});

describe('config agents', () => {
  it('override a built-in, keeping its label and version flag while the command is unchanged', () => {
    const spec = resolveLaunchSpec('opencode', {
      opencode: custom('opencode', { args: ['acp', '--print-logs'], env: { OPENCODE_CONFIG: '/x.json' } }),
    });
    expect(spec).toMatchObject({
      label: 'opencode',
      command: 'opencode',
      args: ['acp', '--print-logs'],
      env: { OPENCODE_CONFIG: '/x.json' },
      versionArgs: ['--version'],
    });
  });

  it('drop the built-in version flag when the override runs another program', () => {
    const spec = resolveLaunchSpec('opencode', { opencode: custom('/opt/oc/bin/opencode-wrapper') });
    expect(spec.versionArgs).toBeUndefined();
    expect(resolveLaunchSpec('qwen', { qwen: custom('qwen2', { versionArgs: ['-V'] }) }).versionArgs).toEqual(
      ['-V'],
    );
  });

  it('add custom ACP agents, listed after the built-ins in name order', () => {
    const agents = { zed: custom('zed-agent', { label: 'Zed' }), aider: custom('aider-acp') };
    expect(resolveLaunchSpec('zed', agents)).toMatchObject({
      name: 'zed',
      label: 'Zed',
      command: 'zed-agent',
    });
    expect(resolveLaunchSpec('aider', agents).label).toBe('aider');
    expect(listLaunchSpecs(agents).map((s) => s.name)).toEqual([
      'opencode',
      'claude',
      'codex',
      'gemini',
      'qwen',
      'aider',
      'zed',
    ]);
  });

  it('reject relative, option-like or shell-like commands and bad env names (E_CONFIG)', () => {
    for (const command of ['../bin/agent', 'bin/agent', '--agent', 'a;b', 'a b', '$(x)', '/opt/../etc/x']) {
      expect(codeOf(() => resolveLaunchSpec('mine', { mine: custom(command) }))).toBe('E_CONFIG');
    }
    expect(codeOf(() => resolveLaunchSpec('mine', { mine: custom('ok', { env: { 'A=B': 'x' } }) }))).toBe(
      'E_CONFIG',
    );
  });
});

describe('agent names', () => {
  it.each([
    '--foo',
    ';rm -rf /',
    '../x',
    'x/../../y',
    'Opencode',
    '',
    ' opencode',
    'opencode\n',
    '9lives',
    'a'.repeat(65),
  ])('refuses %j with E_INVALID_INPUT before anything else', (name) => {
    expect(codeOf(() => resolveLaunchSpec(name, { [name]: custom('x') }))).toBe('E_INVALID_INPUT');
  });

  it('reports unknown names as E_AGENT_NOT_FOUND, naming the known ones', () => {
    try {
      resolveLaunchSpec('cursor', { mine: custom('x') });
      expect.unreachable();
    } catch (err) {
      expect(isBoocoderError(err, 'E_AGENT_NOT_FOUND')).toBe(true);
      expect((err as Error).message).toContain('opencode, claude, codex, gemini, qwen, mine');
    }
  });

  it('does not find Object.prototype members (constructor, tostring, hasownproperty)', () => {
    for (const name of ['constructor', 'tostring', 'valueof', 'hasownproperty']) {
      expect(codeOf(() => resolveLaunchSpec(name, {}))).toBe('E_AGENT_NOT_FOUND');
    }
  });

  it('accepts exactly the names the pattern allows (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (name) => {
        const code = codeOf(() => resolveLaunchSpec(name, {}));
        if (AGENT_NAME_PATTERN.test(name))
          expect(code === undefined || code === 'E_AGENT_NOT_FOUND').toBe(true);
        else expect(code).toBe('E_INVALID_INPUT');
      }),
    );
  });
});

describe('isAcceptableCommand', () => {
  it('accepts bare program names and clean absolute paths only', () => {
    for (const ok of [
      'opencode',
      'claude-agent-acp',
      'node',
      'python3.12',
      'g++',
      '/usr/bin/node',
      '/opt/a b/agent',
    ]) {
      expect(isAcceptableCommand(ok)).toBe(true);
    }
    for (const bad of [
      '',
      '-x',
      '--foo',
      '.hidden',
      '..',
      '../x',
      './x',
      'a/b',
      '/a/../b',
      'a;b',
      'a|b',
      '/bin/x\0y',
    ]) {
      expect(isAcceptableCommand(bad)).toBe(false);
    }
  });
});
