/**
 * Claude Code (the real `claude` CLI, isolated HOME) as a client, configured with exactly the
 * commands docs/configuration.md's "Connect a client" section gives: stdio from this checkout
 * (`add-json` with alwaysLoad), HTTP, and HTTP with a bearer token. `claude mcp list` exits 0 whatever it finds, so its text is checked.
 */
import { mkdtemp, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testHome } from '../helpers/boocoder-app.js';
import {
  BOOCODER_BIN,
  CLIENT_TEST_TOKEN,
  type ClientTestServers,
  cleanUpAll,
  pathWithThisNode,
  REPO_ROOT,
  runCommand,
  startClientTestServers,
  stopDaemonsAndRemove,
  stripAnsi,
  waitForLiveDaemon,
} from '../helpers/clients.js';

const CLAUDE = join(REPO_ROOT, 'node_modules', '.bin', 'claude');

describe('Claude Code as a client', () => {
  let servers: ClientTestServers | undefined;
  let claudeHome: string | undefined;
  let boocoderHome: string | undefined;
  let env: Record<string, string> = {};
  let listing = '';

  const claude = async (...args: string[]) => {
    const result = await runCommand(CLAUDE, args, {
      cwd: claudeHome as string,
      env,
      timeoutMs: 150_000,
    });
    expect(result.code, `claude ${args.join(' ')}\n${result.stdout}\n${result.stderr}`).toBe(0);
    return stripAnsi(result.stdout + result.stderr);
  };

  /** The status `claude mcp list` printed for one server, e.g. `✔ Connected`. */
  const statusOf = (name: string) => new RegExp(`^${name}: .* - (.+)$`, 'm').exec(listing)?.[1]?.trim();

  beforeAll(async () => {
    const [started, home, boo] = await Promise.all([
      startClientTestServers(),
      mkdtemp(join(tmpdir(), 'boocoder-claude-home-')).then((d) => realpath(d)),
      testHome(),
    ]);
    servers = started;
    claudeHome = home;
    boocoderHome = boo.home;
    // Built from nothing but what is needed, so no setting of the developer's leaks in. The
    // stdio server inherits this env: BOOCODER_HOME keeps its daemon in a temp folder.
    env = {
      ...boo.env,
      // Info level: each daemon.log line then names the daemon's pid, which the clean-up needs.
      BOOCODER_LOG_LEVEL: 'info',
      PATH: pathWithThisNode(),
      HOME: home,
      CLAUDE_CONFIG_DIR: join(home, '.claude'),
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      // The first stdio connect starts the daemon; on a busy CI machine that can take a while.
      MCP_TIMEOUT: '120000',
    };
    await claude(
      'mcp',
      'add-json',
      'boocoder',
      JSON.stringify({ type: 'stdio', command: 'node', args: [BOOCODER_BIN, 'stdio'], alwaysLoad: true }),
    );
    await claude('mcp', 'add', '--transport', 'http', 'boocoder-http', started.openUrl);
    await claude(
      'mcp',
      'add',
      '--transport',
      'http',
      'boocoder-token',
      started.tokenUrl,
      '--header',
      `Authorization: Bearer ${CLIENT_TEST_TOKEN}`,
    );
    await claude(
      'mcp',
      'add',
      '--transport',
      'http',
      'boocoder-wrong-token',
      started.tokenUrl,
      '--header',
      'Authorization: Bearer not-the-token-0123456789',
    );
    // One listing checks every server at once (in parallel inside claude).
    listing = await claude('mcp', 'list');
  }, 240_000);

  afterAll(() =>
    cleanUpAll([
      () => (boocoderHome ? stopDaemonsAndRemove(boocoderHome) : undefined),
      () => servers?.close(),
      () => (claudeHome ? stopDaemonsAndRemove(claudeHome) : undefined),
    ]),
  );

  it('connects over stdio from this checkout, through an auto-started daemon', async () => {
    // The stdio process answers the check itself; the daemon it starts comes up behind it.
    expect(statusOf('boocoder'), listing).toBe('✔ Connected');
    // The bridge found (started) its daemon under BOOCODER_HOME, not in the user's ~/.boocoder.
    expect(await waitForLiveDaemon(boocoderHome as string)).toHaveLength(1);
  }, 160_000);

  it('connects over HTTP', () => {
    expect(statusOf('boocoder-http'), listing).toBe('✔ Connected');
  });

  it('connects over HTTP with the bearer token', () => {
    expect(statusOf('boocoder-token'), listing).toBe('✔ Connected');
  });

  it('fails to connect with a wrong token', () => {
    expect(statusOf('boocoder-wrong-token'), listing).toMatch(/Failed/);
  });
});
