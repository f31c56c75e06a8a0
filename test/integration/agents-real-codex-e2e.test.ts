/**
 * The REAL Codex (codex-acp) over ACP, end to end through boocoder and a real MCP client, on both
 * databases: new_task → get_task(wait) → list_pending_changes → apply_change, driven offline by the
 * scripted model server's OpenAI Responses wire; a stalled task's cancel kills the agent's whole
 * process group (the npm wrapper and the native binary it starts); probe_agents finds codex.
 * codex-acp only starts a session on its OpenAI provider after boocoder's `authenticate` step.
 * Assertions are on the worktree's diff and the repository, never on what the agent says it did.
 */
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acpHandshake } from '../../src/agents/acp/handshake.js';
import { buildAgentEnv } from '../../src/agents/agent-env.js';
import { resolveLaunchSpec } from '../../src/agents/launch-specs.js';
import { isProcessGroupAlive } from '../../src/agents/process-group.js';
import { STALL_PHRASE } from '../fixtures/model-server/model-server.js';
import {
  applyCrudChanges,
  CRUD_FILES,
  closeWarmAgents,
  runCrudTasks,
  settledTask,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { CODEX_ACP_BIN, codexAgentConfig, processGroupMembers } from '../helpers/agents-real-codex.js';
import { processesWorkingIn } from '../helpers/agents-real-gemini.js';
import { callOk } from '../helpers/boocoder-app.js';
import { readTask } from '../helpers/chaos-tasks.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

async function until<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// No agents on PATH but node (the codex-acp wrapper is a node script): probe_agents then runs only
// codex, which the config file names by absolute path.
const PATH = '/usr/bin:/bin';

describeEachDatabase('the real Codex (codex-acp) over ACP, end to end', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    config: (models) => ({ agents: { codex: codexAgentConfig(models.baseUrl) } }),
    env: { PATH, BOOCODER_TASK_TIMEOUT_MS: '180000' },
    files: CRUD_FILES,
  });

  // First: the next test's closeAll leaves no warm-session pool for later tasks to start in.
  it("cancelling a stalled task kills the agent's whole process group", async () => {
    const { client, models, boo } = e;
    const queued = await callOk<{ task_id: string }>(client, 'new_task', {
      project: e.repo,
      input: `create stalled.txt with content never ${STALL_PHRASE}`,
      agent: 'codex',
    });
    // The agent is mid-turn: its model request hangs on the server.
    const stalled = await until(() => models.requests.find((r) => r.stalled));
    const pgid = await until(async () => (await readTask(ctx.db, queued.task_id)).agent_pid ?? undefined);
    const members = processGroupMembers(pgid);
    // The npm wrapper (node) and the native codex-acp it runs: two processes, one group.
    expect(members.length).toBeGreaterThanOrEqual(2);

    expect(await callOk(client, 'cancel_task', { task_id: queued.task_id })).toMatchObject({
      cancel_requested: true,
    });
    expect(await settledTask(client, queued.task_id)).toMatchObject({
      state: 'cancelled',
      pending_changes: 0,
    });
    expect(isProcessGroupAlive(pgid)).toBe(false);
    expect(members.filter((pid) => processGroupMembers(pgid).includes(pid))).toEqual([]);
    expect(processesWorkingIn(boo.home)).toEqual([]);
    expect(stalled.abandoned).toBe(true);
  }, 120_000);

  it('creates, edits and deletes files through apply_patch; the changes apply to the repository', async () => {
    const { client, models } = e;
    const requestsBefore = models.requests.length;
    const queued = await runCrudTasks(e, 'codex', { agent: 'codex' });
    await closeWarmAgents(e);
    // Exactly one file each: codex's config, auth.json, state databases and logs stayed out.
    // apply_patch ends every line it adds with a newline.
    await applyCrudChanges(e, 'codex', queued, 'hi from codex\n');

    for (const q of queued) {
      // codex-acp 0.16 reports no token counts and no cost: PromptResponse.usage is absent and its
      // usage_update carries only the context window's fill ({used, size}). Nothing is invented.
      expect(await soleAgentSessionOf(client, q.session_id)).toMatchObject({
        agent: 'codex',
        status: 'closed',
        has_session: true,
        input_tokens: 0,
        output_tokens: 0,
        cost: 0,
      });
    }
    // The model server really drove it, over the Responses wire: one apply_patch per file.
    expect(models.requests.every((r) => r.wire === 'responses')).toBe(true);
    const toolCalls = models.requests
      .slice(requestsBefore)
      .flatMap((r) => ('toolCall' in r.answer ? [r.answer.toolCall.name] : []));
    expect(toolCalls).toEqual(['apply_patch', 'apply_patch', 'apply_patch']);
  }, 240_000);

  it('probe_agents finds codex, its version and ACP support, logged in by the auth step', async () => {
    const { agents } = await callOk<{ agents: Record<string, unknown>[] }>(e.client, 'probe_agents', {
      refresh: true,
    });
    const codex = agents.find((a) => a.name === 'codex');
    expect(codex).toMatchObject({
      installed: true,
      install_path: CODEX_ACP_BIN,
      version: '0.16.0',
      supports_acp: true,
      supports_mcp_client: true,
      needs_auth: false,
      probe_error: null,
    });
    expect(codex?.acp).toMatchObject({ agent_info: { name: 'codex-acp', version: '0.16.0' } });
  }, 60_000);

  it("kept codex's state in its isolated home and left the user's home alone", async () => {
    const codexHome = join(e.boo.home, 'agents', 'codex', '.codex');
    // The auth step saved the key where codex keeps its login: in the isolated home.
    expect(JSON.parse(await readFile(join(codexHome, 'auth.json'), 'utf8'))).toMatchObject({
      auth_mode: 'apikey',
    });
    expect(await snapshot(e.user.path)).toEqual(e.userBefore);
  });
});

describe('probing codex-acp without a key', () => {
  let home: string;
  beforeAll(async () => {
    home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-codex-probe-')));
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it('records "needs authentication", not "no ACP"', async () => {
    const spec = { ...resolveLaunchSpec('codex'), command: CODEX_ACP_BIN };
    const {
      OPENAI_API_KEY: _key,
      CODEX_API_KEY: _codexKey,
      ...inherited
    } = process.env as Record<string, string>;
    const env = buildAgentEnv({ spec, home, childEnv: { ...inherited, HOME: home, PATH } });
    const result = await acpHandshake(CODEX_ACP_BIN, [], {
      env,
      timeoutMs: 30_000,
      maxMessageBytes: 1 << 20,
      spec,
    });
    expect(result).toMatchObject({ speaksAcp: true, needsAuth: true, error: 'needs authentication' });
    expect(result.authMethods.map((m) => m.id)).toContain('openai-api-key');
  }, 60_000);
});
