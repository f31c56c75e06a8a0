/**
 * opencode (the real `opencode` CLI, isolated HOME and XDG folders) as a client, configured with
 * docs/configuration.md's opencode.json: a local (stdio) server from this checkout and a remote (HTTP) one,
 * plus a remote one with the bearer token in `headers`. `opencode mcp list` shows each status.
 */
import { mkdir, mkdtemp, realpath, writeFile } from 'node:fs/promises';
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

const OPENCODE = join(REPO_ROOT, 'node_modules', '.bin', 'opencode');

describe('opencode as a client', () => {
  let servers: ClientTestServers | undefined;
  let home: string | undefined;
  let boocoderHome: string | undefined;
  let listing = '';

  /** `[symbol, status]` that `opencode mcp list` printed for one server, e.g. `['✓', 'connected']`. */
  const statusOf = (name: string) => {
    const m = new RegExp(`^\\S*\\s+(\\S)\\s+${name}\\s+(.+)$`, 'm').exec(listing);
    return m ? [m[1], m[2]?.trim()] : undefined;
  };

  beforeAll(async () => {
    const [started, dir, boo] = await Promise.all([
      startClientTestServers(),
      mkdtemp(join(tmpdir(), 'boocoder-opencode-home-')).then((d) => realpath(d)),
      testHome(),
    ]);
    servers = started;
    home = dir;
    boocoderHome = boo.home;
    const configDir = join(dir, '.config');
    await mkdir(join(configDir, 'opencode'), { recursive: true });
    // The documented config, in the global place it names (~/.config/opencode/opencode.json).
    await writeFile(
      join(configDir, 'opencode', 'opencode.json'),
      JSON.stringify({
        $schema: 'https://opencode.ai/config.json',
        mcp: {
          // `timeout` is not in the documented config: opencode gives a local server 30 s to connect,
          // and the first connect also starts the daemon, which a loaded CI machine can take longer for.
          boocoder: { type: 'local', command: ['node', BOOCODER_BIN, 'stdio'], timeout: 120_000 },
          'boocoder-http': { type: 'remote', url: started.openUrl },
          'boocoder-token': {
            type: 'remote',
            url: started.tokenUrl,
            headers: { Authorization: `Bearer ${CLIENT_TEST_TOKEN}` },
          },
          'boocoder-wrong-token': {
            type: 'remote',
            url: started.tokenUrl,
            headers: { Authorization: 'Bearer not-the-token-0123456789' },
          },
        },
      }),
    );
    const env: Record<string, string> = {
      // The local server inherits this env: BOOCODER_HOME keeps its daemon in a temp folder.
      ...boo.env,
      // Info level: each daemon.log line then names the daemon's pid, which the clean-up needs.
      BOOCODER_LOG_LEVEL: 'info',
      PATH: pathWithThisNode(),
      HOME: dir,
      XDG_CONFIG_HOME: configDir,
      XDG_DATA_HOME: join(dir, '.local', 'share'),
      XDG_STATE_HOME: join(dir, '.local', 'state'),
      XDG_CACHE_HOME: join(dir, '.cache'),
      // Only the config above counts: no project files from the folders above the temp dir.
      OPENCODE_DISABLE_PROJECT_CONFIG: '1',
      OPENCODE_DISABLE_AUTOUPDATE: '1',
      OPENCODE_DISABLE_MODELS_FETCH: '1',
      OPENCODE_DISABLE_CLAUDE_CODE: '1',
    };
    const result = await runCommand(OPENCODE, ['mcp', 'list'], { cwd: dir, env, timeoutMs: 150_000 });
    listing = stripAnsi(result.stdout + result.stderr);
    expect(result.code, listing).toBe(0);
  }, 240_000);

  afterAll(() =>
    cleanUpAll([
      () => (boocoderHome ? stopDaemonsAndRemove(boocoderHome) : undefined),
      () => servers?.close(),
      () => (home ? stopDaemonsAndRemove(home) : undefined),
    ]),
  );

  it('connects to the local (stdio) server from this checkout, through an auto-started daemon', async () => {
    expect(statusOf('boocoder'), listing).toEqual(['✓', 'connected']);
    // The bridge started its daemon under BOOCODER_HOME (daemon.log names it), not in ~/.boocoder.
    // The stdio process answers the check itself; the daemon it starts comes up behind it.
    expect(await waitForLiveDaemon(boocoderHome as string)).toHaveLength(1);
  }, 160_000);

  it('connects to the remote (HTTP) server', () => {
    expect(statusOf('boocoder-http'), listing).toEqual(['✓', 'connected']);
  });

  it('connects to the remote server with the bearer token in headers', () => {
    expect(statusOf('boocoder-token'), listing).toEqual(['✓', 'connected']);
  });

  it('does not connect with a wrong token (opencode offers OAuth instead)', () => {
    const status = statusOf('boocoder-wrong-token');
    expect(status?.[1], listing).not.toBe('connected');
    expect(status?.[1], listing).toMatch(/needs authentication|failed/);
  });
});
