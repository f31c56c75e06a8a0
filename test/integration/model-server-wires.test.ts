/**
 * The scripted model server's Anthropic Messages wire, proven with the REAL Claude Code CLI:
 * `claude -p` (isolated HOME, ANTHROPIC_BASE_URL on the server) creates, edits and deletes files in
 * a temp git repository. Assertions are on the files and git's view of them, not on what claude says.
 */
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANTHROPIC_USAGE } from '../fixtures/model-server/anthropic-wire.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';
import { REPO_ROOT, runCommand } from '../helpers/clients.js';
import { git, type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const CLAUDE = join(REPO_ROOT, 'node_modules', '.bin', 'claude');

interface ResultLine {
  type: string;
  subtype?: string;
  is_error?: boolean;
  usage?: { input_tokens?: number; output_tokens?: number };
}

describe('the Anthropic Messages wire, driving the real Claude Code CLI', () => {
  let models: ModelServer;
  let repos: TempRepos;
  let home: string;

  beforeAll(async () => {
    models = await startModelServer();
    repos = tempRepos();
    home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-claude-wire-home-')));
  });

  afterAll(async () => {
    await models?.close();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** `claude -p PROMPT` in `cwd`; the final `result` line of its stream-json output. */
  async function claudeP(cwd: string, prompt: string): Promise<ResultLine> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // Nothing of the real user's Claude setup or login: a fresh home per test file.
      HOME: home,
      ANTHROPIC_BASE_URL: models.anthropicBaseUrl,
      ANTHROPIC_API_KEY: 'not-a-real-key',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      // --dangerously-skip-permissions refuses to run as root outside a declared sandbox.
      ...(process.getuid?.() === 0 ? { IS_SANDBOX: '1' } : {}),
    };
    const args = [
      '-p',
      prompt,
      '--output-format',
      'stream-json',
      '--verbose',
      '--dangerously-skip-permissions',
    ];
    const run = await runCommand(CLAUDE, args, { cwd, env, timeoutMs: 120_000 });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const lines = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ResultLine);
    const result = lines.find((l) => l.type === 'result');
    if (!result) throw new Error(`no result line from claude -p:\n${run.stdout}\n${run.stderr}`);
    return result;
  }

  it('creates, edits and deletes files through Write, Read + Edit and Bash', async () => {
    const repo = await repos.repo({ 'README.md': '# demo\n', 'old.txt': 'to be deleted\n' });
    const created = await claudeP(repo, 'Please create hello.txt with content hi from claude');
    await claudeP(repo, 'Please edit README.md: replace # demo with # demo by claude');
    await claudeP(repo, 'Please delete old.txt');

    expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe('hi from claude');
    expect(await readFile(join(repo, 'README.md'), 'utf8')).toBe('# demo by claude\n');
    await expect(stat(join(repo, 'old.txt'))).rejects.toThrow(/ENOENT/);
    expect(git(repo, 'diff', '--name-status', 'HEAD').split('\n').sort()).toEqual([
      'D\told.txt',
      'M\tREADME.md',
    ]);
    expect(git(repo, 'ls-files', '--others', '--exclude-standard')).toBe('hello.txt');

    // Nothing unscripted was asked for, and every model call went over the Anthropic wire.
    expect(models.unhandled).toEqual([]);
    expect(models.requests.every((r) => r.wire === 'anthropic')).toBe(true);
    const calls = models.requests.flatMap((r) => ('toolCall' in r.answer ? [r.answer.toolCall.name] : []));
    expect(calls).toEqual(['Write', 'Read', 'Edit', 'Bash']);
    // The usage the wire reports reaches claude's own accounting: two model calls for a create.
    expect(created).toMatchObject({ subtype: 'success', is_error: false });
    expect(created.usage?.input_tokens).toBe(2 * ANTHROPIC_USAGE.input_tokens);
    expect(created.usage?.output_tokens).toBe(2 * ANTHROPIC_USAGE.output_tokens);
  }, 300_000);
});
