/**
 * The native agent's tools in a real temp folder: the path policy (no `..`, nothing in `.git`, no
 * symlink escape), exact-replacement edits, a failing command, a command stopped at its timeout;
 * the context trimming; and the stable errors of a model endpoint that is down or refuses the key.
 */

import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveLaunchSpec } from '../../src/agents/launch-specs.js';
import { runNativeTurn, trimContext } from '../../src/agents/native/loop.js';
import { OpenAiWire } from '../../src/agents/native/openai-wire.js';
import { NATIVE_TOOLS, runTool, type ToolContext } from '../../src/agents/native/tools.js';
import type { ModelWire } from '../../src/agents/native/wire.js';
import { probeAgents } from '../../src/agents/probe.js';
import { isBoocoderError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { agentFix } from '../../src/services/agents.js';

let root: string;
let outside: string;
let ctx: ToolContext;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'boocode-tools-')));
  outside = await realpath(await mkdtemp(join(tmpdir(), 'boocode-outside-')));
  await writeFile(join(outside, 'secret.txt'), 'secret\n');
  await mkdir(join(root, '.git'));
  await writeFile(join(root, '.git', 'config'), '[core]\n');
  await writeFile(join(root, 'a.txt'), 'one two two\n');
  await symlink(outside, join(root, 'link'));
  const commands = {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 60_000,
    maxOutputBytes: 1024,
    signal: new AbortController().signal,
    onSpawn: async () => {},
  };
  ctx = { root, commands };
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

describe('native agent tools', () => {
  it.each([
    ['read_file', { path: '../x' }, /climbs out/],
    ['read_file', { path: '.git/config' }, /git/i],
    ['write_file', { path: '/etc/passwd', content: 'x' }, /climbs out|absolute/],
    ['read_file', { path: 'link/secret.txt' }, /symlink|symbolic/i],
    ['write_file', { path: 'link/new.txt', content: 'x' }, /symlink|symbolic/i],
  ])('refuses %s %j', async (name, args, reason) => {
    await expect(runTool(ctx, name, args)).rejects.toThrow(reason);
  });

  it('writes, edits by exact unique replacement, lists, searches and deletes inside the worktree', async () => {
    expect(await runTool(ctx, 'write_file', { path: 'd/b.txt', content: 'hello\n' })).toBe('wrote d/b.txt');
    expect(await runTool(ctx, 'edit_file', { path: 'a.txt', old_string: 'two', new_string: '2' })).toMatch(
      /occurs 2 times/,
    );
    expect(
      await runTool(ctx, 'edit_file', { path: join(root, 'a.txt'), old_string: 'one', new_string: '1' }),
    ).toBe('edited a.txt');
    expect(await readFile(join(root, 'a.txt'), 'utf8')).toBe('1 two two\n');
    const listed = (await runTool(ctx, 'list_files', { folder: '.' })).split('\n');
    expect(listed).toContain('d/b.txt');
    expect(listed.some((f) => f.startsWith('.git'))).toBe(false);
    expect(await runTool(ctx, 'search', { text: 'hello' })).toBe('d/b.txt:1: hello');
    expect(await runTool(ctx, 'delete_file', { path: 'd/b.txt' })).toBe('deleted d/b.txt');
  });

  it('reports a failing command with its exit code and output, capped', async () => {
    const failed = await runTool(ctx, 'run_command', { command: 'echo oops >&2; exit 3' });
    expect(failed).toBe('exit code 3\noops\n');
    const long = await runTool(ctx, 'run_command', { command: 'head -c 5000 /dev/zero | tr "\\0" x' });
    expect(long).toMatch(/output cut at 1024 bytes/);
  });

  it('stops a command at its timeout, its whole process group', async () => {
    const quick = { ...ctx, commands: { ...ctx.commands, timeoutMs: 300 } };
    expect(await runTool(quick, 'run_command', { command: 'sleep 60 & sleep 60' })).toMatch(/^timed out/);
  });

  it('offers every tool with a schema whose required properties it declares', () => {
    for (const t of NATIVE_TOOLS) expect(t.parameters.required).toEqual(Object.keys(t.parameters.properties));
  });
});

describe('native agent context and model errors', () => {
  it('trims the oldest tool outputs first, saying so', () => {
    const wire = new OpenAiWire({ apiKey: 'x', baseUrl: 'http://127.0.0.1:9/v1' }, 'm');
    const messages: unknown[] = [
      { role: 'tool', tool_call_id: '1', content: 'a'.repeat(1000) },
      { role: 'tool', tool_call_id: '2', content: 'b'.repeat(1000) },
    ];
    trimContext(wire, messages, 1500);
    expect((messages[0] as { content: string }).content).toMatch(/^\[output trimmed: 1000 characters/);
    expect((messages[1] as { content: string }).content).toBe('b'.repeat(1000));
  });

  it('says E_MODEL_UNREACHABLE for an endpoint that is down', async () => {
    const wire = new OpenAiWire({ apiKey: 'x', baseUrl: 'http://127.0.0.1:9/v1' }, 'm');
    const err = await wire.step([], 's', NATIVE_TOOLS, new AbortController().signal).catch((e) => e);
    expect(isBoocoderError(err, 'E_MODEL_UNREACHABLE')).toBe(true);
  });

  it('says E_MODEL_AUTH for a refused key and E_MODEL_BAD_RESPONSE for garbage, leaking neither', async () => {
    let status = 401;
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status === 401 ? '{"error":{"message":"bad key"}}' : 'not json at all');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const wire = new OpenAiWire({ apiKey: 'sk-secret', baseUrl: `http://127.0.0.1:${port}/v1` }, 'm');
      const signal = new AbortController().signal;
      const auth = await wire.step([], 's', NATIVE_TOOLS, signal).catch((e) => e);
      expect(isBoocoderError(auth, 'E_MODEL_AUTH')).toBe(true);
      status = 500;
      const bad = await wire.step([], 's', NATIVE_TOOLS, signal).catch((e) => e);
      expect(isBoocoderError(bad, 'E_MODEL_BAD_RESPONSE')).toBe(true);
      for (const e of [auth, bad])
        expect(`${e.message}${JSON.stringify(e.details)}`).not.toMatch(/sk-secret|127\.0\.0\.1/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('native agent spec and probe', () => {
  it('is installed once an endpoint or a key is configured, and says what it needs otherwise', async () => {
    const bare = resolveLaunchSpec('boocode', { boocode: { args: [], env: {}, api: 'openai' } });
    const served = resolveLaunchSpec('boocode', {
      boocode: { args: [], env: {}, api: 'anthropic', baseUrl: 'http://127.0.0.1:9' },
    });
    expect(served.native).toMatchObject({ api: 'anthropic', baseUrl: 'http://127.0.0.1:9' });
    const [a, b] = await probeAgents({ specs: [bare, served], pathEnv: '/nonexistent' });
    expect(a).toMatchObject({ name: 'boocode', installPath: null });
    expect(b).toMatchObject({ name: 'boocode', installPath: 'native:anthropic', supportsAcp: false });
    expect(agentFix(bare, { installPath: null, needsAuth: false })?.text).toMatch(/agents\.boocode\.baseUrl/);
  });
});

describe('native agent turn', () => {
  it('never asks a human about a path the policy refuses; the model reads the refusal', async () => {
    let steps = 0;
    const results: string[] = [];
    // The model is the one allowed double: it asks to write outside the worktree, then stops.
    const wire: ModelWire = {
      api: 'openai',
      addUser: (m, text) => void m.push(text),
      step: async () => {
        steps += 1;
        return steps === 1
          ? {
              text: '',
              calls: [{ id: 'c1', name: 'write_file', args: { path: '../x', content: 'x' } }],
              inputTokens: 1,
              outputTokens: 1,
            }
          : { text: 'done', calls: [], inputTokens: 1, outputTokens: 1 };
      },
      addToolResults: (_m, r) => void results.push(...r.map((x) => x.text)),
      toolResultSlots: () => [],
    };
    const asked: unknown[] = [];
    const turn = await runNativeTurn({
      wire,
      messages: [],
      prompt: 'go',
      cwd: root,
      env: {},
      signal: new AbortController().signal,
      onSpawn: async () => {},
      asker: async (request) => {
        asked.push(request);
        return { outcome: { outcome: 'selected', optionId: 'allow' } };
      },
      commandTimeoutMs: 1000,
      logger: createLogger('error', { test: true }),
      taskId: 't',
    });
    expect(turn).toMatchObject({ stopReason: 'end_turn', text: 'done', steps: 2, inputTokens: 2 });
    expect(asked).toEqual([]);
    expect(results[0]).toMatch(/climbs out/);
  });
});
