/**
 * The REAL `opencode serve` (opencode-ai, a devDependency) through the warm-server driver, against
 * the scripted model server: one server for several worktrees, warm sessions, usage summed from
 * the turn's steps, cancel, timeout, permission answers, a dying server and a closed one.
 * Assertions are on the files in the worktrees and on the model requests, never on what the agent
 * says it did.
 */
import { mkdtemp, readFile, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpencodeServer } from '../../src/agents/opencode-serve/server.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { BoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import {
  type ModelServer,
  STALL_PHRASE,
  startModelServer,
  USAGE,
} from '../fixtures/model-server/model-server.js';
import {
  type FakeUserHome,
  fakeUserHome,
  type OpencodePermission,
  OTHER_MODEL,
  opencodeSpec,
} from '../helpers/agents-real-opencode.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

/** Real agents start slowly on a loaded CI machine: bounds, not timing assertions. */
const TURN_TIMEOUT_MS = 150_000;
const TEST_TIMEOUT_MS = 400_000;
/** opencode's price for one scripted response (see agents-real-opencode.ts). */
const STEP_COST = 0.18;

let models: ModelServer;
let user: FakeUserHome;
let repos: TempRepos;
const homes: string[] = [];
const servers: OpencodeServer[] = [];

async function startServer(permission?: OpencodePermission): Promise<OpencodeServer> {
  const home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-serve-home-')));
  homes.push(home);
  const server = await OpencodeServer.start({
    spec: opencodeSpec(models.baseUrl, permission),
    home,
    childEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.path },
    logger: silentLogger,
  });
  servers.push(server);
  return server;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Waits until the model server holds a request of this turn stalled: the turn is mid-way. */
async function untilStalled(requestsBefore: number): Promise<void> {
  while (!models.requests.slice(requestsBefore).some((r) => r.stalled)) await delay(50);
}

/** Waits until opencode closed every stalled request since then: the abort reached the model call. */
async function untilAbandoned(requestsBefore: number): Promise<void> {
  const stalled = () => models.requests.slice(requestsBefore).filter((r) => r.stalled);
  while (stalled().length === 0 || stalled().some((r) => !r.abandoned)) await delay(50);
}

async function errorOf(work: Promise<unknown>): Promise<BoocoderError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BoocoderError);
  return err as BoocoderError;
}

beforeAll(async () => {
  // Warm sessions: each turn's history holds the earlier turns' tool results.
  models = await startModelServer({ perUserTurn: true });
  user = await fakeUserHome();
  repos = tempRepos();
});

afterAll(async () => {
  for (const server of servers) await server.close();
  await models?.close();
  await user?.cleanup();
  await repos?.cleanup();
  for (const home of homes) await rm(home, { recursive: true, force: true });
});

describe('the real opencode serve backend', () => {
  let server: OpencodeServer;
  /** One worktree for most tests: opencode's first request in a directory starts slowly. */
  let wt: string;

  beforeAll(async () => {
    server = await startServer();
    wt = await repos.repo({ 'README.md': '# demo\n', 'notes.txt': 'old line\n', 'gone.txt': 'x\n' });
  }, TEST_TIMEOUT_MS);

  it(
    'creates, edits and deletes files over one warm session, usage summed per turn',
    async () => {
      const first = await server.runTurn({
        directory: wt,
        prompt: 'create hello.txt with content hi there',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(first.stopReason).toBe('end_turn');
      expect(await readFile(join(wt, 'hello.txt'), 'utf8')).toBe('hi there');
      // Two model calls (the tool call, then the final text): both steps count, not only the last.
      expect(first.usage).toEqual({
        inputTokens: 2 * USAGE.prompt_tokens,
        outputTokens: 2 * USAGE.completion_tokens,
        cost: expect.closeTo(2 * STEP_COST, 6),
        currency: 'USD',
      });
      expect(first.agentSessionId).toMatch(/^ses_/);
      expect(first.agentInfo?.version).toMatch(/^\d+\.\d+\.\d+/);

      const before = models.requests.length;
      const second = await server.runTurn({
        directory: wt,
        sessionId: first.agentSessionId as string,
        prompt: 'edit notes.txt: replace old line with new line',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(second.stopReason).toBe('end_turn');
      expect(second.agentSessionId).toBe(first.agentSessionId);
      expect(await readFile(join(wt, 'notes.txt'), 'utf8')).toBe('new line\n');
      // Warm: the second turn's model calls carry the first turn's conversation.
      const turnRequests = models.requests.slice(before).filter((r) => r.toolNames.length > 0);
      expect(turnRequests.length).toBeGreaterThan(0);
      for (const r of turnRequests)
        expect(JSON.stringify(r.body)).toContain('create hello.txt with content hi there');
      expect(second.usage?.inputTokens).toBe(2 * USAGE.prompt_tokens);

      const third = await server.runTurn({
        directory: wt,
        sessionId: first.agentSessionId as string,
        prompt: 'delete gone.txt',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(third.stopReason).toBe('end_turn');
      expect(await exists(join(wt, 'gone.txt'))).toBe(false);
      expect(await readFile(join(wt, 'README.md'), 'utf8')).toBe('# demo\n');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'serves two worktrees at once, each turn working in its own',
    async () => {
      const a = wt;
      const b = await repos.repo();
      const [ra, rb] = await Promise.all([
        server.runTurn({
          directory: a,
          prompt: 'create a.txt with content in a',
          timeoutMs: TURN_TIMEOUT_MS,
        }),
        server.runTurn({
          directory: b,
          prompt: 'create b.txt with content in b',
          model: OTHER_MODEL,
          timeoutMs: TURN_TIMEOUT_MS,
        }),
      ]);
      expect([ra.stopReason, rb.stopReason]).toEqual(['end_turn', 'end_turn']);
      expect(await readFile(join(a, 'a.txt'), 'utf8')).toBe('in a');
      expect(await readFile(join(b, 'b.txt'), 'utf8')).toBe('in b');
      expect(await exists(join(a, 'b.txt'))).toBe(false);
      expect(await exists(join(b, 'a.txt'))).toBe(false);
      expect(ra.agentSessionId).not.toBe(rb.agentSessionId);
      expect(ra.usage?.inputTokens).toBe(2 * USAGE.prompt_tokens);
      expect(rb.usage?.inputTokens).toBe(2 * USAGE.prompt_tokens);
      const onOther = models.requests.filter((r) => JSON.stringify(r.body).includes('create b.txt'));
      expect(new Set(onOther.filter((r) => r.toolNames.length > 0).map((r) => r.model))).toEqual(
        new Set(['other-model']),
      );

      // A session is bound to its worktree: it cannot be continued in another one.
      const crossed = server.runTurn({
        directory: b,
        sessionId: ra.agentSessionId as string,
        prompt: 'create crossed.txt with content no',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect((await errorOf(crossed)).code).toBe('E_INVALID_INPUT');
      expect(await exists(join(b, 'crossed.txt'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a model the server does not offer, naming those it does',
    async () => {
      const err = await errorOf(
        server.runTurn({
          directory: wt,
          prompt: 'create never.txt with content x',
          model: 'scripted/no-such-model',
          timeoutMs: TURN_TIMEOUT_MS,
        }),
      );
      expect(err.code).toBe('E_INVALID_INPUT');
      expect(err.message).toMatch(/no model "scripted\/no-such-model"; it offers: .*scripted\/other-model/);
      expect(await exists(join(wt, 'never.txt'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'cancels a turn mid-way (POST abort), and the session then takes the next turn',
    async () => {
      const cancel = new AbortController();
      const before = models.requests.length;
      const turn = server.runTurn({
        directory: wt,
        prompt: `create stalled.txt with content never ${STALL_PHRASE}`,
        signal: cancel.signal,
        timeoutMs: TURN_TIMEOUT_MS,
      });
      await untilStalled(before);
      cancel.abort();
      const cancelled = await turn;
      expect(cancelled.stopReason).toBe('cancelled');
      await untilAbandoned(before);
      expect(await exists(join(wt, 'stalled.txt'))).toBe(false);

      const next = await server.runTurn({
        directory: wt,
        sessionId: cancelled.agentSessionId as string,
        prompt: 'create after.txt with content after the cancel',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(next.stopReason).toBe('end_turn');
      expect(await readFile(join(wt, 'after.txt'), 'utf8')).toBe('after the cancel');
      expect(next.usage?.inputTokens).toBe(2 * USAGE.prompt_tokens);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'fails a turn that outlives its budget with E_AGENT_TIMEOUT',
    async () => {
      const err = await errorOf(
        server.runTurn({
          directory: wt,
          prompt: `create slow.txt with content x ${STALL_PHRASE}`,
          timeoutMs: 3000,
        }),
      );
      expect(err.code).toBe('E_AGENT_TIMEOUT');
      expect(await exists(join(wt, 'slow.txt'))).toBe(false);
      expect(server.alive).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'close stops the whole process group; later turns fail with E_AGENT_FAILED',
    async () => {
      const pid = server.pid;
      expect(isProcessGroupAlive(pid)).toBe(true);
      await server.close();
      expect(isProcessGroupAlive(pid)).toBe(false);
      const err = await errorOf(
        server.runTurn({ directory: wt, prompt: 'create no.txt with content x', timeoutMs: TURN_TIMEOUT_MS }),
      );
      expect(err.code).toBe('E_AGENT_FAILED');
    },
    TEST_TIMEOUT_MS,
  );
});

describe('an opencode serve that asks before editing', () => {
  let server: OpencodeServer;
  let wt: string;

  beforeAll(async () => {
    server = await startServer({ edit: 'ask', bash: 'ask' });
    wt = await repos.repo();
  }, TEST_TIMEOUT_MS);

  it(
    'allows an edit inside the worktree once and refuses one outside it or in its .git',
    async () => {
      const inside = await server.runTurn({
        directory: wt,
        prompt: 'create asked.txt with content allowed once',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(inside.stopReason).toBe('end_turn');
      expect(await readFile(join(wt, 'asked.txt'), 'utf8')).toBe('allowed once');

      const elsewhere = await repos.dir();
      const outside = await server.runTurn({
        directory: wt,
        prompt: `create ${join(elsewhere, 'escaped.txt')} with content never`,
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(outside.stopReason).toBe('end_turn');
      expect(await exists(join(elsewhere, 'escaped.txt'))).toBe(false);

      const intoGit = await server.runTurn({
        directory: wt,
        prompt: 'create .git/planted.txt with content never',
        timeoutMs: TURN_TIMEOUT_MS,
      });
      expect(intoGit.stopReason).toBe('end_turn');
      expect(await exists(join(wt, '.git', 'planted.txt'))).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'fails the running turn with E_AGENT_FAILED when the server dies',
    async () => {
      const before = models.requests.length;
      const turn = server.runTurn({
        directory: wt,
        prompt: `create dying.txt with content x ${STALL_PHRASE}`,
        timeoutMs: TURN_TIMEOUT_MS,
      });
      await untilStalled(before);
      process.kill(-server.pid, 'SIGKILL');
      const err = await errorOf(turn);
      expect(err.code).toBe('E_AGENT_FAILED');
      expect(server.alive).toBe(false);
      await server.exited;
    },
    TEST_TIMEOUT_MS,
  );

  it('left the model server nothing unscripted', () => {
    expect(models.unhandled).toEqual([]);
  });
});
