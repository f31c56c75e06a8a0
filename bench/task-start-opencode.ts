/**
 * Task start with the real opencode (npm opencode-ai) against the scripted model server: the clock
 * starts when the client sends `new_task` and stops when opencode sends the turn's first model
 * request (one offering tools), the first thing it does once it works on the prompt. Cold runs
 * start a new chat (a new opencode process: spawn, ACP initialize, session/new); warm runs follow
 * up in the same chat, on the live process and session.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { acpTestAgentSpec } from '../test/fixtures/acp-test-agent.js';
import { type ModelServer, startModelServer } from '../test/fixtures/model-server/model-server.js';
import { OPENCODE_BIN, opencodeEnv } from '../test/helpers/agents-real-opencode.js';
import { callTool } from './mcp-clients.js';
import { now, waitFor } from './stats.js';

export interface OpencodeStarts {
  cold: number[];
  warm: number[];
}

/** A config.json with the fixture agent (default) and the real opencode on the scripted model. */
export async function writeAgentsConfig(home: string, model: ModelServer): Promise<void> {
  const fixture = acpTestAgentSpec();
  await writeFile(
    join(home, 'config.json'),
    JSON.stringify({
      defaultAgent: 'fixture',
      agents: {
        fixture: { command: fixture.command, args: fixture.args },
        opencode: { command: OPENCODE_BIN, args: ['acp'], env: opencodeEnv(model.baseUrl) },
      },
    }),
  );
}

export function startScriptedModel(): Promise<ModelServer> {
  return startModelServer({ perUserTurn: true });
}

/** opencode's first start in a fresh home sets up its state database: slow on a loaded machine. */
const START_TIMEOUT_MS = 180_000;

interface Ids {
  sessionId?: string;
  chatId?: string;
}

/** One task: ms from new_task to opencode's first turn request, and the ids it ran in. */
async function sampleOpencode(
  client: Client,
  model: ModelServer,
  o: { project: string; n: number } & Ids,
): Promise<{ ms: number; sessionId: string; chatId: string }> {
  const before = model.requests.length;
  const sent = now();
  const queued = (
    await callTool(client, 'new_task', {
      project: o.project,
      agent: 'opencode',
      input: `create start-${o.n}.txt with content started ${o.n}`,
      ...(o.sessionId ? { session_id: o.sessionId } : {}),
      ...(o.chatId ? { chat_id: o.chatId } : {}),
    })
  ).structuredContent as { task_id: string; session_id: string; chat_id: string };
  // Polled every millisecond: coarse next to the hundreds of ms being measured.
  const seenAt = await waitFor(
    'opencode to send its first turn request',
    async () => (model.requests.slice(before).some((r) => r.toolNames.length > 0) ? now() : undefined),
    START_TIMEOUT_MS,
    1,
  );
  const end = (await callTool(client, 'get_task', { task_id: queued.task_id, wait_s: 55 }))
    .structuredContent as { state: string };
  if (end.state !== 'completed') throw new Error(`opencode task ${queued.task_id} ended ${end.state}`);
  return { ms: seenAt - sent, sessionId: queued.session_id, chatId: queued.chat_id };
}

/**
 * `runs` pairs in one session: a task in a new chat (cold), then a follow-up in that chat (warm).
 * The first pair is untimed: it fills the page cache for opencode's binary.
 */
export async function measureOpencodeStarts(
  client: Client,
  model: ModelServer,
  project: string,
  runs: number,
): Promise<OpencodeStarts> {
  const cold: number[] = [];
  const warm: number[] = [];
  let sessionId: string | undefined;
  for (let i = 0; i <= runs; i++) {
    const a = await sampleOpencode(client, model, { project, n: 2 * i, ...(sessionId ? { sessionId } : {}) });
    sessionId = a.sessionId;
    const b = await sampleOpencode(client, model, { project, n: 2 * i + 1, sessionId, chatId: a.chatId });
    if (i === 0) continue;
    cold.push(a.ms);
    warm.push(b.ms);
  }
  return { cold, warm };
}
