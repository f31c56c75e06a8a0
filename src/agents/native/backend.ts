/**
 * The `native` backend: boocoder's own agent, `boocode`, whose model loop (loop.ts) runs in this
 * process against an OpenAI-compatible or Anthropic endpoint. Its conversation per chat lives in
 * the database (native_conversations), so nothing stays running between turns and a follow-up
 * continues the chat also after a restart.
 */
import type { Config } from '../../config.js';
import type { Db } from '../../db/db.js';
import { findNativeConversation, saveNativeConversation } from '../../db/native-conversations.js';
import { BoocoderError } from '../../errors.js';
import type { AgentBackend, AgentTurnResult, BackendSession, TurnRequest } from '../agent-backend.js';
import { buildAgentEnv } from '../agent-env.js';
import { AnthropicWire } from './anthropic-wire.js';
import { runNativeTurn } from './loop.js';
import { OpenAiWire } from './openai-wire.js';
import type { ModelWire } from './wire.js';

export interface NativeBackendOptions {
  db: Db;
  config: Pick<Config, 'home' | 'childEnv' | 'taskTimeoutMs'>;
}

/** The key names the wires read; kept from the commands the model runs (it must not print them). */
const KEY_NAMES = { openai: 'OPENAI_API_KEY', anthropic: 'ANTHROPIC_API_KEY' } as const;

export class NativeBackend implements AgentBackend {
  readonly sessionBackend = 'native' as const;

  constructor(private readonly o: NativeBackendOptions) {}

  async openSession(r: TurnRequest): Promise<BackendSession> {
    return new NativeTaskSession(this.o, r);
  }

  /** Each turn ends with its commands' process groups stopped: nothing is left to close. */
  async close(): Promise<void> {}
}

class NativeTaskSession implements BackendSession {
  readonly processLost = false;

  constructor(
    private readonly o: NativeBackendOptions,
    private readonly i: TurnRequest,
  ) {}

  async release(): Promise<void> {}

  private wire(): ModelWire {
    const { spec, task } = this.i;
    const native = spec.native;
    if (!native) throw new BoocoderError('E_CONFIG', `agent "${spec.name}" is not the native agent`);
    const model = task.model ?? spec.model;
    if (!model) {
      throw new BoocoderError(
        'E_CONFIG',
        'boocode has no model: set agents.boocode.model in the config file or pass model to new_task',
      );
    }
    const keyName = KEY_NAMES[native.api];
    // The config file's key first, then boocoder's own environment (read by config.ts).
    const apiKey = spec.env[keyName] ?? this.o.config.childEnv[keyName];
    if (!apiKey && !native.baseUrl) {
      throw new BoocoderError('E_CONFIG', `boocode needs ${keyName} (agents.boocode.env) or a baseUrl`);
    }
    // A local server often takes no key; the SDKs insist on one, so a placeholder is sent.
    const o = { apiKey: apiKey ?? 'none', ...(native.baseUrl ? { baseUrl: native.baseUrl } : {}) };
    return native.api === 'anthropic' ? new AnthropicWire(o, model) : new OpenAiWire(o, model);
  }

  async runTurn(): Promise<AgentTurnResult> {
    const { i, o } = this;
    const wire = this.wire();
    const chatId = i.task.chatId as string;
    const stored = await findNativeConversation(o.db, chatId, i.spec.name);
    // A conversation in another wire format cannot be sent on: the chat starts afresh.
    const messages = stored && stored.api === wire.api ? stored.messages : [];
    const env = { ...buildAgentEnv({ spec: i.spec, home: o.config.home, childEnv: o.config.childEnv }) };
    for (const key of Object.values(KEY_NAMES)) delete env[key];
    const turn = await runNativeTurn({
      wire,
      messages,
      prompt: i.task.input,
      cwd: i.cwd,
      env,
      signal: i.signal,
      onSpawn: i.onSpawn,
      ...(i.asker ? { asker: i.asker } : {}),
      commandTimeoutMs: Math.min(o.config.taskTimeoutMs, 10 * 60_000),
      logger: i.logger,
      taskId: i.task.id,
      ...(i.onEvent ? { onEvent: i.onEvent } : {}),
    });
    await saveNativeConversation(o.db, chatId, i.spec.name, {
      api: wire.api,
      configHash: i.configHash,
      messages,
    });
    const model = (i.task.model ?? i.spec.model) as string;
    const price = Object.hasOwn(i.spec.native?.prices ?? {}, model)
      ? i.spec.native?.prices[model]
      : undefined;
    return {
      stopReason: turn.stopReason,
      agentSessionId: chatId,
      outputText: turn.text,
      outputTruncated: false,
      updates: turn.steps,
      usage: {
        inputTokens: turn.inputTokens,
        outputTokens: turn.outputTokens,
        ...(price
          ? {
              cost: (turn.inputTokens * price.input + turn.outputTokens * price.output) / 1e6,
              currency: 'USD',
            }
          : {}),
      },
      agentInfo: { name: 'boocode', title: 'boocode (native)', version: '1' },
    };
  }
}
