/**
 * The real Claude Code (`claude -p`) on a fresh home, with boocoder over stdio exactly as the
 * README adds it (`claude mcp add-json` with `alwaysLoad`) and Claude Code's default timeouts: its first turn offers boocoder's
 * tools to the model and the model's call of one is answered by boocoder (the daemon's first start
 * happens behind it), not failed with "still connecting". The model is the scripted Anthropic
 * server (test/fixtures/model-server), told to `call tool list_tasks`.
 */
import { mkdtemp, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AnthropicRequest } from '../fixtures/model-server/anthropic-wire.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';
import { testHome } from '../helpers/boocoder-app.js';
import {
  BOOCODER_BIN,
  cleanUpAll,
  pathWithThisNode,
  REPO_ROOT,
  runCommand,
  stopDaemonsAndRemove,
} from '../helpers/clients.js';

const CLAUDE = join(REPO_ROOT, 'node_modules', '.bin', 'claude');
const TOOL = 'mcp__boocoder__list_tasks';

/** The tool_result blocks a request carries, as text. */
function toolResults(body: AnthropicRequest): Array<{ text: string; isError: boolean }> {
  return (body.messages ?? []).flatMap((m) =>
    Array.isArray(m.content)
      ? m.content
          .filter((b) => b.type === 'tool_result')
          .map((b) => {
            const block = b as { content?: unknown; is_error?: boolean };
            return { text: JSON.stringify(block.content ?? ''), isError: block.is_error === true };
          })
      : [],
  );
}

describe('Claude Code on a fresh home', () => {
  let models: ModelServer | undefined;
  let claudeHome: string | undefined;
  let boocoderHome: string | undefined;

  afterAll(() =>
    cleanUpAll([
      () => (boocoderHome ? stopDaemonsAndRemove(boocoderHome) : undefined),
      () => models?.close(),
      () => (claudeHome ? stopDaemonsAndRemove(claudeHome) : undefined),
    ]),
  );

  it("calls one of boocoder's tools in its first turn, and gets boocoder's answer", async () => {
    models = await startModelServer();
    claudeHome = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-claude-first-')));
    const boo = await testHome({ BOOCODER_LOG_LEVEL: 'info' });
    boocoderHome = boo.home;
    // Nothing of the developer's settings; no MCP_TIMEOUT: Claude Code's own defaults apply.
    const env = {
      ...boo.env,
      PATH: pathWithThisNode(),
      HOME: claudeHome,
      CLAUDE_CONFIG_DIR: join(claudeHome, '.claude'),
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      ANTHROPIC_BASE_URL: models.anthropicBaseUrl,
      ANTHROPIC_API_KEY: 'not-a-real-key',
    };
    const claude = (...args: string[]) =>
      runCommand(CLAUDE, args, { cwd: claudeHome as string, env, timeoutMs: 200_000 });
    // alwaysLoad: Claude Code waits (up to MCP_CONNECT_TIMEOUT_MS, 5 s) for this server before the
    // first turn instead of starting it without the server's tools (its default in -p mode).
    const added = await claude(
      'mcp',
      'add-json',
      'boocoder',
      JSON.stringify({ type: 'stdio', command: 'node', args: [BOOCODER_BIN, 'stdio'], alwaysLoad: true }),
    );
    expect(added.code, added.stderr).toBe(0);

    const run = await claude('-p', `call tool list_tasks`, '--output-format', 'json', '--allowedTools', TOOL);
    const turns = models.requests.filter((r) => r.wire === 'anthropic' && r.toolNames.length > 0);
    expect(turns[0]?.toolNames, `${run.stdout}\n${run.stderr}`).toContain(TOOL);
    expect(turns[0]?.answer).toMatchObject({ toolCall: { name: TOOL } });
    const results = turns.flatMap((t) => toolResults(t.body as AnthropicRequest));
    expect(results.length, `${run.stdout}\n${run.stderr}`).toBeGreaterThan(0);
    // boocoder's own answer (an empty queue), not Claude Code's "still connecting" error.
    expect(results[0]?.isError).toBe(false);
    expect(results[0]?.text).toContain('next_cursor');
    expect(run.code, run.stderr).toBe(0);
  }, 300_000);
});
