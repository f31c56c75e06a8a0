/**
 * kill -9 of a `boocoder serve` whose opencode tasks run on the shared `opencode serve`: the REAL
 * opencode server (scripted model server) lives on in its own process group, orphaned. The next
 * `boocoder serve` on the same home finds the server's record and kills its group at start; the
 * record is gone afterwards. (The guards, a recycled pid above all, are in
 * test/integration/opencode-serve-orphans.test.ts.)
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveRecordsDir } from '../../src/agents/opencode-serve/orphans.js';
import { type ModelServer, startModelServer } from '../fixtures/model-server/model-server.js';
import {
  type FakeUserHome,
  fakeUserHome,
  OPENCODE_BIN,
  opencodeEnv,
} from '../helpers/agents-real-opencode.js';
import { callOk, connectHttpClient, testHome } from '../helpers/boocoder-app.js';
import {
  groupMembers,
  killGroups,
  killProcess,
  type RunningProcess,
  startServe,
  waitFor,
  waitForExit,
} from '../helpers/chaos-processes.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

const TEST_TIMEOUT_MS = 400_000;

describe('kill -9 of boocoder serve leaves its opencode server, the next start reaps it', () => {
  let models: ModelServer;
  let user: FakeUserHome;
  let repos: TempRepos;
  let home: string | undefined;
  let first: (RunningProcess & { url: string }) | undefined;
  let second: (RunningProcess & { url: string }) | undefined;
  let client: Client | undefined;
  const groups: number[] = [];

  beforeAll(async () => {
    models = await startModelServer({ perUserTurn: true });
    user = await fakeUserHome();
    repos = tempRepos();
  });

  afterAll(async () => {
    await client?.close().catch(() => {});
    await killProcess(first);
    await killProcess(second);
    killGroups(groups);
    await models?.close();
    await user?.cleanup();
    await repos?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it(
    'kills the orphaned opencode server at the next start and drops its record',
    async () => {
      const repo = await repos.repo({ 'README.md': '# demo\n' });
      const configFile = join(await repos.dir(), 'config.json');
      await writeFile(
        configFile,
        JSON.stringify({
          defaultAgent: 'opencode',
          opencodeBackend: 'serve',
          agents: { opencode: { command: OPENCODE_BIN, args: ['acp'], env: opencodeEnv(models.baseUrl) } },
        }),
      );
      // The embedded database: the restarted serve also breaks the dead process's lock itself.
      const made = await testHome({ BOOCODER_CONFIG: configFile, HOME: user.path });
      home = made.home;
      first = await startServe(made.env, home);
      client = await connectHttpClient(first.url);
      const queued = await callOk<{ task_id: string }>(client, 'new_task', {
        project: repo,
        input: 'create crash.txt with content x',
      });
      await waitFor(
        'the task on the opencode server to complete',
        async () => {
          const t = await callOk<{ state: string }>(client as Client, 'get_task', {
            task_id: queued.task_id,
            wait_s: 20,
          });
          expect(t.state).not.toMatch(/failed|cancelled/);
          return t.state === 'completed';
        },
        TEST_TIMEOUT_MS,
      );

      // The running server is recorded with its owner, this boocoder serve.
      const dir = serveRecordsDir(home);
      const [name, ...more] = await readdir(dir);
      expect(more).toEqual([]);
      expect(name).toMatch(new RegExp(`^${first.pid}-\\d+\\.json$`));
      const record = JSON.parse(await readFile(join(dir, name as string), 'utf8'));
      const serverPid = record.server.pid as number;
      groups.push(serverPid);
      expect(groupMembers(serverPid).length).toBeGreaterThan(0);

      await client.close();
      client = undefined;
      first.child.kill('SIGKILL');
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // The crash left the server running: nothing else would ever stop it.
      expect(groupMembers(serverPid).length).toBeGreaterThan(0);

      second = await startServe(made.env, home);
      await waitFor('the orphaned opencode server to be reaped', async () => {
        const left = await readdir(dir);
        return groupMembers(serverPid).length === 0 && left.length === 0;
      });

      second.child.kill('SIGTERM');
      expect((await waitForExit(second, 60_000)).code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
