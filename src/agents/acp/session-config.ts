/**
 * Reading an ACP session's models and modes, and putting a session on the model, mode, thought
 * level and other options a task asks for. The planning is pure; applySessionConfig sends the
 * requests it plans over a connection the caller owns.
 *
 * ACP puts model, mode and thought level in `configOptions` (category `model` / `mode` /
 * `thought_level`, set with `session/set_config_option`); other options are addressed by id.
 * Agents written before that return `models: {availableModels, currentModelId}` and `modes`, and
 * take `session/set_model` / `session/set_mode` instead (opencode accepts both).
 */
import type * as acp from '@agentclientprotocol/sdk/unstable';
import type { NewSessionResponse, SessionConfigOption } from '@agentclientprotocol/sdk/unstable';
import { BoocoderError } from '../../errors.js';

export interface ChoiceInfo {
  id: string;
  name: string;
}

type SetConfigOption = {
  method: 'session/set_config_option';
  params:
    | { sessionId: string; configId: string; value: string }
    | { sessionId: string; configId: string; type: 'boolean'; value: boolean };
};

export type ModelSelection =
  | SetConfigOption
  | { method: 'session/set_model'; params: { sessionId: string; modelId: string } };

/** One request that changes a session's configuration. */
export type ConfigRequest =
  | ModelSelection
  | { method: 'session/set_mode'; params: { sessionId: string; modeId: string } };

/** Agents are not trusted to send sane lists: capped in number and length. */
const MAX_CHOICES = 500;
const cut = (value: unknown, max = 200) => String(value).slice(0, max);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

function selectValues(option: SessionConfigOption): ChoiceInfo[] {
  if (option.type !== 'select' || !Array.isArray(option.options)) return [];
  const flat = (option.options as unknown[])
    .filter(isObject)
    .flatMap((entry) =>
      Array.isArray(entry.options) ? (entry.options as unknown[]).filter(isObject) : [entry],
    );
  return flat.slice(0, MAX_CHOICES).map((o) => ({ id: cut(o.value), name: cut(o.name) }));
}

/** The session's config options that are objects with an id: what an agent sends is not trusted. */
function configOptionsOf(session: NewSessionResponse): SessionConfigOption[] {
  const options: unknown = session.configOptions;
  if (!Array.isArray(options)) return [];
  return options.filter((o): o is SessionConfigOption => isObject(o) && typeof o.id === 'string');
}

function optionOf(session: NewSessionResponse, category: string): SessionConfigOption | undefined {
  return configOptionsOf(session).find((o) => o.category === category && o.type === 'select');
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

/** A session option beside model and mode (thought level, features...), as the probe records it. */
export interface ConfigOptionInfo {
  id: string;
  name: string;
  category: string | null;
  type: 'select' | 'boolean';
  current: string | boolean | null;
  /** The values of a select option; empty for a boolean. */
  values: ChoiceInfo[];
}

/** Every select or boolean option but model and mode (those have their own fields), capped. */
export function sessionConfigOptions(session: NewSessionResponse): ConfigOptionInfo[] {
  return configOptionsOf(session)
    .filter(
      (o) => (o.type === 'select' || o.type === 'boolean') && o.category !== 'model' && o.category !== 'mode',
    )
    .slice(0, 50)
    .map((o) => ({
      id: cut(o.id),
      name: cut(o.name),
      category: typeof o.category === 'string' ? cut(o.category) : null,
      type: o.type,
      current:
        o.type === 'boolean' ? o.currentValue === true : o.currentValue == null ? null : cut(o.currentValue),
      values: selectValues(o),
    }));
}

/** E_INVALID_INPUT for a value the agent does not offer, naming some of those it does. */
function refuse(subject: string, what: string, value: string, available: ChoiceInfo[]): BoocoderError {
  const some = available.slice(0, 20).map((m) => m.id);
  const offer = some.length
    ? `it offers: ${some.join(', ')}${available.length > some.length ? ', …' : ''}`
    : `it lets no client choose a ${what}`;
  return new BoocoderError('E_INVALID_INPUT', `${subject} has no ${what} "${cut(value)}"; ${offer}`, {
    [what.replace(/ /g, '_')]: cut(value),
  });
}

function setSelect(sessionId: string, option: SessionConfigOption, value: string): SetConfigOption {
  return { method: 'session/set_config_option', params: { sessionId, configId: option.id, value } };
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
  if (!available.some((m) => m.id === model)) throw refuse(`agent "${agentName}"`, 'model', model, available);
  const option = optionOf(session, 'model');
  if (option) return setSelect(session.sessionId, option, model);
  return { method: 'session/set_model', params: { sessionId: session.sessionId, modelId: model } };
}

/** Like planModelSelection, for the mode (build, plan...): `session/set_mode` on older agents. */
export function planModeSelection(
  agentName: string,
  session: NewSessionResponse,
  mode: string,
): ConfigRequest | null {
  const { current, available } = sessionModes(session);
  if (current === mode) return null;
  if (!available.some((m) => m.id === mode)) throw refuse(`agent "${agentName}"`, 'mode', mode, available);
  const option = optionOf(session, 'mode');
  if (option) return setSelect(session.sessionId, option, mode);
  return { method: 'session/set_mode', params: { sessionId: session.sessionId, modeId: mode } };
}

/** Like planModelSelection, for the thought level (the `thought_level` config option). */
export function planThinkingSelection(
  agentName: string,
  session: NewSessionResponse,
  level: string,
): ConfigRequest | null {
  const option = optionOf(session, 'thought_level');
  const available = option ? selectValues(option) : [];
  if (option && cut(option.currentValue) === level) return null;
  if (!option || !available.some((c) => c.id === level))
    throw refuse(`agent "${agentName}"`, 'thought level', level, available);
  return setSelect(session.sessionId, option, level);
}

/**
 * The request that sets the config option with id `id` to `value` (a value id for a select
 * option, true or false for an on/off one), or null when it already has it.
 */
export function planFeatureSelection(
  agentName: string,
  session: NewSessionResponse,
  id: string,
  value: string | boolean,
): ConfigRequest | null {
  const options = configOptionsOf(session);
  const option = options.find((o) => o.id === id);
  if (!option) {
    const ids = options.slice(0, 50).map((o) => cut(o.id));
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${agentName}" has no config option "${cut(id)}"; ${ids.length ? `its options: ${ids.join(', ')}` : 'it has none'}`,
      { feature: cut(id) },
    );
  }
  if (option.currentValue === value) return null;
  if (option.type === 'boolean') {
    if (typeof value !== 'boolean') {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `config option "${cut(id)}" of agent "${agentName}" is on/off: pass true or false`,
        { feature: cut(id) },
      );
    }
    return {
      method: 'session/set_config_option',
      params: { sessionId: session.sessionId, configId: option.id, type: 'boolean', value },
    };
  }
  const available = selectValues(option);
  if (typeof value !== 'string' || !available.some((c) => c.id === value))
    throw refuse(`config option "${cut(id)}" of agent "${agentName}"`, 'value', String(value), available);
  return setSelect(session.sessionId, option, value);
}

/** What a task asks of its agent's session (tasks.model, mode_id, thinking_option_id, feature_values). */
export interface SessionConfigChoice {
  model?: string;
  mode?: string;
  thinking?: string;
  /** Other config options by id: a value id for a select option, true or false for an on/off one. */
  features?: Readonly<Record<string, string | boolean>>;
}

/** A feature must not set again what model, mode or thinking set: which one should win? */
function refuseDuplicate(
  agentName: string,
  session: NewSessionResponse,
  choice: SessionConfigChoice,
  id: string,
): void {
  const dedicated = [
    ['model', 'model', choice.model],
    ['mode', 'mode', choice.mode],
    ['thinking', 'thought_level', choice.thinking],
  ] as const;
  for (const [argument, category, value] of dedicated) {
    if (value !== undefined && optionOf(session, category)?.id === id) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        `config option "${cut(id)}" of agent "${agentName}" is set by ${argument}; leave it out of features`,
        { feature: cut(id) },
      );
    }
  }
}

/**
 * Puts a new session on what the task asks for, in this order: model (another model can offer
 * other modes and thought levels), mode, thought level, then each feature. Each is checked
 * against what the agent offers at that moment (every set_config_option answer lists the options
 * anew) and sent only when it differs from the current value. Throws E_INVALID_INPUT, naming the
 * values on offer, when the agent lacks one: a task must not run on other settings than it asked
 * for. `untilStopped` bounds each request (the caller's setup budget and cancellation). Returns
 * the requests sent.
 */
export async function applySessionConfig(
  agent: acp.ClientContext,
  agentName: string,
  session: NewSessionResponse,
  choice: SessionConfigChoice,
  untilStopped: <T>(work: Promise<T>) => Promise<T> = (work) => work,
): Promise<ConfigRequest[]> {
  let state = session;
  const sent: ConfigRequest[] = [];
  const send = async (request: ConfigRequest | null) => {
    if (!request) return;
    const answer = await untilStopped(agent.request<unknown>(request.method, request.params));
    sent.push(request);
    if (isObject(answer) && Array.isArray(answer.configOptions))
      state = { ...state, configOptions: answer.configOptions as SessionConfigOption[] };
  };
  if (choice.model !== undefined) await send(planModelSelection(agentName, state, choice.model));
  if (choice.mode !== undefined) await send(planModeSelection(agentName, state, choice.mode));
  if (choice.thinking !== undefined) await send(planThinkingSelection(agentName, state, choice.thinking));
  for (const [id, value] of Object.entries(choice.features ?? {})) {
    refuseDuplicate(agentName, state, choice, id);
    await send(planFeatureSelection(agentName, state, id, value));
  }
  return sent;
}
