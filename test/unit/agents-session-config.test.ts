import type { NewSessionResponse } from '@agentclientprotocol/sdk/unstable';
import { describe, expect, it } from 'vitest';
import { planModelSelection, sessionModels, sessionModes } from '../../src/agents/acp-session-config.js';

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
