import type { NewSessionResponse, SessionConfigOption } from '@agentclientprotocol/sdk/unstable';
import * as acp from '@agentclientprotocol/sdk/unstable';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applySessionConfig,
  planModelSelection,
  type SessionConfigChoice,
  sessionConfigOptions,
  sessionModels,
  sessionModes,
} from '../../src/agents/acp/session-config.js';
import { BoocoderError } from '../../src/errors.js';

const withConfigOptions: NewSessionResponse = {
  sessionId: 's1',
  configOptions: [
    {
      id: 'model',
      name: 'Model',
      category: 'model',
      type: 'select',
      currentValue: 'p/a',
      options: [
        {
          group: 'p',
          name: 'P',
          options: [
            { value: 'p/a', name: 'A' },
            { value: 'p/b', name: 'B' },
          ],
        },
      ],
    },
    {
      id: 'mode',
      name: 'Mode',
      category: 'mode',
      type: 'select',
      currentValue: 'build',
      options: [{ value: 'build', name: 'Build' }],
    },
  ],
};
const legacy = {
  sessionId: 's2',
  models: {
    currentModelId: 'x',
    availableModels: [
      { modelId: 'x', name: 'X' },
      { modelId: 'y', name: 'Y' },
    ],
  },
} as NewSessionResponse;

describe('session models and modes', () => {
  it('reads grouped config options and the older models field', () => {
    expect(sessionModels(withConfigOptions)).toEqual({
      current: 'p/a',
      available: [
        { id: 'p/a', name: 'A' },
        { id: 'p/b', name: 'B' },
      ],
    });
    expect(sessionModes(withConfigOptions).available).toEqual([{ id: 'build', name: 'Build' }]);
    expect(sessionModels(legacy).available.map((m) => m.id)).toEqual(['x', 'y']);
    expect(sessionModels({ sessionId: 's3' })).toEqual({ current: null, available: [] });
  });

  it('lists the other options (thought level, booleans) for the probe, model and mode left out', () => {
    const session = {
      sessionId: 's4',
      configOptions: [
        ...(withConfigOptions.configOptions ?? []),
        {
          id: 'effort',
          name: 'Effort',
          category: 'thought_level',
          type: 'select',
          currentValue: 'low',
          options: [
            { value: 'low', name: 'Low' },
            { value: 'high', name: 'High' },
          ],
        },
        { id: 'fast', name: 'Fast', type: 'boolean', currentValue: true },
        { id: 'weird', name: 'Weird', type: 'text', currentValue: 'x' },
        'not an option',
      ],
    } as unknown as NewSessionResponse;
    expect(sessionConfigOptions(session)).toEqual([
      {
        id: 'effort',
        name: 'Effort',
        category: 'thought_level',
        type: 'select',
        current: 'low',
        values: [
          { id: 'low', name: 'Low' },
          { id: 'high', name: 'High' },
        ],
      },
      { id: 'fast', name: 'Fast', category: null, type: 'boolean', current: true, values: [] },
    ]);
    expect(sessionConfigOptions({ sessionId: 's5' })).toEqual([]);
  });
});

describe('planModelSelection', () => {
  it('uses session/set_config_option when the agent has a model option, and nothing when already on it', () => {
    expect(planModelSelection('oc', withConfigOptions, 'p/b')).toEqual({
      method: 'session/set_config_option',
      params: { sessionId: 's1', configId: 'model', value: 'p/b' },
    });
    expect(planModelSelection('oc', withConfigOptions, 'p/a')).toBeNull();
  });

  it('falls back to session/set_model for agents with only the models field', () => {
    expect(planModelSelection('old', legacy, 'y')).toEqual({
      method: 'session/set_model',
      params: { sessionId: 's2', modelId: 'y' },
    });
  });

  it('refuses a model the agent does not offer, naming what it offers, rather than run on another', () => {
    expect(() => planModelSelection('oc', withConfigOptions, 'p/zzz')).toThrow(
      /no model "p\/zzz"; it offers: p\/a, p\/b/,
    );
    expect(() => planModelSelection('x', { sessionId: 's' }, 'm')).toThrow(/lets no client choose a model/);
  });
});

/**
 * An in-process ACP agent with real config options: thought levels depend on the model (p/a can
 * only "think" off, p/b has low and high), `fast` is on/off and `sandbox` a select. It applies
 * session/set_config_option as an agent would and keeps what it was told, so tests check the
 * agent's own state rather than what the client meant to send.
 */
class ConfigurableAgent {
  readonly received: acp.SetSessionConfigOptionRequest[] = [];
  readonly modeRequests: acp.SetSessionModeRequest[] = [];
  values: Record<string, string | boolean> = {
    model: 'p/a',
    mode: 'build',
    effort: 'off',
    fast: false,
    sandbox: 'workspace',
  };

  constructor(private readonly legacyModes = false) {}

  options(): SessionConfigOption[] {
    const select = (id: string, category: string | null, values: string[]): SessionConfigOption => ({
      id,
      name: id,
      category,
      type: 'select',
      currentValue: String(this.values[id]),
      options: values.map((value) => ({ value, name: value.toUpperCase() })),
    });
    const options = [
      select('model', 'model', ['p/a', 'p/b']),
      select('effort', 'thought_level', this.values.model === 'p/b' ? ['off', 'low', 'high'] : ['off']),
      {
        id: 'fast',
        name: 'Fast',
        type: 'boolean',
        currentValue: this.values.fast === true,
      } as SessionConfigOption,
      select('sandbox', null, ['workspace', 'strict']),
    ];
    return this.legacyModes ? options : [select('mode', 'mode', ['build', 'plan']), ...options];
  }

  app() {
    return acp
      .agent({ name: 'configurable' })
      .onRequest(acp.methods.agent.session.new, () => ({
        sessionId: 's1',
        configOptions: this.options(),
        ...(this.legacyModes
          ? {
              modes: {
                currentModeId: String(this.values.mode),
                availableModes: [
                  { id: 'build', name: 'Build' },
                  { id: 'plan', name: 'Plan' },
                ],
              },
            }
          : {}),
      }))
      .onRequest(acp.methods.agent.session.setConfigOption, ({ params }) => {
        this.received.push(params);
        const option = this.options().find((o) => o.id === params.configId);
        if (!option) throw acp.RequestError.invalidParams(undefined, `no option ${params.configId}`);
        this.values[params.configId] = params.value;
        return { configOptions: this.options() };
      })
      .onRequest(acp.methods.agent.session.setMode, ({ params }) => {
        this.modeRequests.push(params);
        this.values.mode = params.modeId;
        return {};
      });
  }
}

const connections: { close(): void }[] = [];
afterEach(() => {
  for (const c of connections.splice(0)) c.close();
});

/** Connects a client to `agent` in process, opens a session and applies `choice` to it. */
async function applyTo(agent: ConfigurableAgent, choice: SessionConfigChoice) {
  const connection = acp.client({ name: 'boocoder-test' }).connect(agent.app());
  connections.push(connection);
  const session = await connection.agent.request(acp.methods.agent.session.new, { cwd: '/', mcpServers: [] });
  return applySessionConfig(connection.agent, 'cfg', session, choice);
}

async function refusal(agent: ConfigurableAgent, choice: SessionConfigChoice): Promise<BoocoderError> {
  const err = await applyTo(agent, choice).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BoocoderError);
  expect((err as BoocoderError).code).toBe('E_INVALID_INPUT');
  return err as BoocoderError;
}

describe('applySessionConfig against an in-process ACP agent', () => {
  it('sets model, mode, thought level and features, reading the options anew after each answer', async () => {
    const agent = new ConfigurableAgent();
    // "high" exists only once the model is p/b: the answer to the model change must be used.
    const sent = await applyTo(agent, {
      model: 'p/b',
      mode: 'plan',
      thinking: 'high',
      features: { fast: true, sandbox: 'strict' },
    });
    expect(agent.values).toEqual({
      model: 'p/b',
      mode: 'plan',
      effort: 'high',
      fast: true,
      sandbox: 'strict',
    });
    expect(agent.received.map((r) => [r.configId, r.value])).toEqual([
      ['model', 'p/b'],
      ['mode', 'plan'],
      ['effort', 'high'],
      ['fast', true],
      ['sandbox', 'strict'],
    ]);
    expect(agent.received[3]).toMatchObject({ type: 'boolean', value: true });
    expect(sent).toHaveLength(5);
  });

  it('sends nothing for values the session already has, or when nothing is asked', async () => {
    const agent = new ConfigurableAgent();
    const sent = await applyTo(agent, {
      model: 'p/a',
      mode: 'build',
      thinking: 'off',
      features: { fast: false, sandbox: 'workspace' },
    });
    expect(sent).toEqual([]);
    expect(await applyTo(agent, {})).toEqual([]);
    expect(agent.received).toEqual([]);
  });

  it('refuses a mode, thought level or feature value the agent lacks, naming what it offers', async () => {
    const agent = new ConfigurableAgent();
    expect((await refusal(agent, { mode: 'yolo' })).message).toBe(
      'agent "cfg" has no mode "yolo"; it offers: build, plan',
    );
    // On p/a there is no "high": the levels on offer are those of the model asked for.
    expect((await refusal(agent, { thinking: 'high' })).message).toBe(
      'agent "cfg" has no thought level "high"; it offers: off',
    );
    expect((await refusal(agent, { features: { sandbox: 'none' } })).message).toBe(
      'config option "sandbox" of agent "cfg" has no value "none"; it offers: workspace, strict',
    );
    expect((await refusal(agent, { features: { turbo: true } })).message).toBe(
      'agent "cfg" has no config option "turbo"; its options: mode, model, effort, fast, sandbox',
    );
    expect((await refusal(agent, { features: { fast: 'yes' } })).message).toMatch(
      /^config option "fast" of agent "cfg" is on\/off: pass true or false$/,
    );
    expect((await refusal(agent, { features: { sandbox: true } })).message).toMatch(/has no value "true"/);
    expect(agent.received).toEqual([]);
  });

  it('stops at the first refusal: what came before is set, nothing after is sent', async () => {
    const agent = new ConfigurableAgent();
    await refusal(agent, { model: 'p/b', mode: 'yolo', thinking: 'high' });
    expect(agent.received.map((r) => r.configId)).toEqual(['model']);
    expect(agent.values).toMatchObject({ model: 'p/b', mode: 'build', effort: 'off' });
  });

  it('refuses a feature that sets again what model, mode or thinking set', async () => {
    const agent = new ConfigurableAgent();
    const err = await refusal(agent, { thinking: 'off', features: { effort: 'off' } });
    expect(err.message).toBe(
      'config option "effort" of agent "cfg" is set by thinking; leave it out of features',
    );
    // Without the dedicated argument, a feature may address the same option by id.
    await applyTo(agent, { model: 'p/b', features: { effort: 'low' } });
    expect(agent.values.effort).toBe('low');
  });

  it('sets the mode with session/set_mode on an agent that has only the older modes field', async () => {
    const agent = new ConfigurableAgent(true);
    await applyTo(agent, { mode: 'plan' });
    expect(agent.modeRequests).toEqual([{ sessionId: 's1', modeId: 'plan' }]);
    expect(agent.values.mode).toBe('plan');
    expect(agent.received).toEqual([]);
  });

  it('treats malformed config options from an agent as none instead of failing on them', () => {
    const hostile = {
      sessionId: 's',
      configOptions: [null, 7, { name: 'no id' }],
    } as unknown as NewSessionResponse;
    expect(sessionModels(hostile)).toEqual({ current: null, available: [] });
    expect(() => planModelSelection('x', hostile, 'm')).toThrow(/lets no client choose a model/);
    const notAList = { sessionId: 's', configOptions: 'model' } as unknown as NewSessionResponse;
    expect(sessionModes(notAList)).toEqual({ current: null, available: [] });
  });
});
