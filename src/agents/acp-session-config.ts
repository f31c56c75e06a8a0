/**
 * Reading an ACP session's models and modes, and choosing how to select a model. Pure: the driver
 * and the probe do the I/O.
 *
 * ACP puts model and mode in `configOptions` (category `model` / `mode`, set with
 * `session/set_config_option`). Agents written before that return `models: {availableModels,
 * currentModelId}` and take `session/set_model` instead (opencode accepts both).
 */
import type { NewSessionResponse, SessionConfigOption } from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../errors.js';

export interface ChoiceInfo {
  id: string;
  name: string;
}

export type ModelSelection =
  | { method: 'session/set_config_option'; params: { sessionId: string; configId: string; value: string } }
  | { method: 'session/set_model'; params: { sessionId: string; modelId: string } };

/** Agents are not trusted to send sane lists: capped in number and length. */
const MAX_CHOICES = 500;
const cut = (value: unknown, max = 200) => String(value).slice(0, max);

function selectValues(option: SessionConfigOption): ChoiceInfo[] {
  if (option.type !== 'select' || !Array.isArray(option.options)) return [];
  const flat = option.options.flatMap((entry) =>
    'group' in entry && Array.isArray(entry.options)
      ? entry.options
      : [entry as { value: string; name: string }],
  );
  return flat.slice(0, MAX_CHOICES).map((o) => ({ id: cut(o.value), name: cut(o.name) }));
}

function optionOf(session: NewSessionResponse, category: string): SessionConfigOption | undefined {
  return (session.configOptions ?? []).find((o) => o.category === category && o.type === 'select');
}

interface LegacyModels {
  currentModelId?: unknown;
  availableModels?: { modelId?: unknown; name?: unknown }[];
}

function legacyModels(session: NewSessionResponse): LegacyModels | undefined {
  const models = (session as { models?: unknown }).models;
  return models && typeof models === 'object' && Array.isArray((models as LegacyModels).availableModels)
    ? (models as LegacyModels)
    : undefined;
}

/** The models the session offers and the current one. */
export function sessionModels(session: NewSessionResponse): {
  current: string | null;
  available: ChoiceInfo[];
} {
  const option = optionOf(session, 'model');
  if (option) return { current: cut(option.currentValue), available: selectValues(option) };
  const legacy = legacyModels(session);
  if (!legacy) return { current: null, available: [] };
  return {
    current: legacy.currentModelId === undefined ? null : cut(legacy.currentModelId),
    available: (legacy.availableModels ?? [])
      .slice(0, MAX_CHOICES)
      .map((m) => ({ id: cut(m.modelId), name: cut(m.name ?? m.modelId) })),
  };
}

/** The modes (build, plan, ask...) the session offers. */
export function sessionModes(session: NewSessionResponse): {
  current: string | null;
  available: ChoiceInfo[];
} {
  const option = optionOf(session, 'mode');
  if (option) return { current: cut(option.currentValue), available: selectValues(option) };
  if (!session.modes) return { current: null, available: [] };
  return {
    current: cut(session.modes.currentModeId),
    available: session.modes.availableModes
      .slice(0, MAX_CHOICES)
      .map((m) => ({ id: cut(m.id), name: cut(m.name) })),
  };
}

/**
 * The request that switches the session to `model`, or null when it already uses it. Throws
 * E_INVALID_INPUT, naming some of the agent's models, when the agent does not offer `model` or
 * lets no client choose one: a task must not silently run on another model than it asked for.
 */
export function planModelSelection(
  agentName: string,
  session: NewSessionResponse,
  model: string,
): ModelSelection | null {
  const { current, available } = sessionModels(session);
  if (current === model) return null;
  if (!available.some((m) => m.id === model)) {
    const some = available.slice(0, 20).map((m) => m.id);
    const offer = some.length
      ? `it offers: ${some.join(', ')}${available.length > some.length ? ', …' : ''}`
      : 'it lets no client choose a model';
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${agentName}" has no model "${cut(model)}"; ${offer}`,
      {
        model: cut(model),
      },
    );
  }
  const option = optionOf(session, 'model');
  if (option) {
    return {
      method: 'session/set_config_option',
      params: { sessionId: session.sessionId, configId: option.id, value: model },
    };
  }
  return { method: 'session/set_model', params: { sessionId: session.sessionId, modelId: model } };
}
