/**
 * The headless execution path end to end through boocoder and a real MCP client, on both databases,
 * with the REAL opencode (`opencode run --format json`) and the REAL Gemini CLI (`gemini -o
 * stream-json`) driven offline by the scripted model server: new_task(execution_path headless) →
 * pending changes → apply_change, usage on get_agent_sessions, and a follow-up task in the same
 * chat continuing the same backend session. Assertions are on diffs, files and what the model
 * server was sent, never on what the agent says it did.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { USAGE } from '../fixtures/model-server/model-server.js';
import { RESPONSES_USAGE } from '../fixtures/model-server/responses-wire.js';
import {
  agentSessionsOf,
  applyAll,
  type Change,
  changesOf,
  opencodeAgentConfig,
  type Queued,
  runTaskToEnd,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { codexAgentConfig } from '../helpers/agents-real-codex.js';
import { geminiAgentConfig } from '../helpers/agents-real-gemini.js';
import { OPENCODE_BIN } from '../helpers/agents-real-opencode.js';
import { callError } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface SessionView {
  agent: string;
  backend: string;
  status: string;
  agent_session_id: string | null;
  input_tokens: number;
  output_tokens: number;
  cost: number;
}

/** A config entry whose agent finds this checkout's node_modules/.bin first on its PATH. */
function withDevDependencyPath(entry: Record<string, unknown>): Record<string, unknown> {
  const env = (entry.env ?? {}) as Record<string, string>;
  return {
    ...entry,
    env: { ...env, PATH: `${dirname(OPENCODE_BIN)}:${process.env.PATH ?? '/usr/bin:/bin'}` },
  };
}

describeEachDatabase('the headless execution path with real agents, end to end', (ctx) => {
  const e = useAgentBoocoder(ctx, {
    // Each user turn judged on its own: a resumed conversation's second prompt gets its own tool
    // call on the chat wire (opencode). The Gemini wire has no such option yet: see the gemini case.
    models: { perUserTurn: true },
    config: (models) => ({
      agents: {
        opencode: opencodeAgentConfig(models.baseUrl),
        gemini: geminiAgentConfig(models.geminiBaseUrl),
        // Headless claude and codex run the `claude` and `codex` CLIs, not these ACP adapters;
        // codex keeps the adapter's `-c` overrides. They are this checkout's dev dependencies, in
        // node_modules/.bin, which agents never search unless their config entry names it: PATH.
        codex: withDevDependencyPath(codexAgentConfig(models.baseUrl)),
        claude: withDevDependencyPath({
          command: 'claude-agent-acp',
          args: [],
          env: {
            ANTHROPIC_BASE_URL: models.anthropicBaseUrl,
            ANTHROPIC_API_KEY: 'not-a-real-key',
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          },
        }),
      },
    }),
    env: { BOOCODER_TASK_TIMEOUT_MS: '180000' },
  });

  /** Queues a headless task, waits for it and returns its pending changes. */
  async function headlessTask(args: Record<string, unknown>): Promise<{ q: Queued; changes: Change[] }> {
    const { queued, done } = await runTaskToEnd(e.client, { execution_path: 'headless', ...args });
    expect(done).toMatchObject({ state: 'completed', error: null });
    return { q: queued, changes: await changesOf(e.client, { task_id: queued.task_id }) };
  }

  const sessionsOf = (sessionId: string) => agentSessionsOf<SessionView>(e.client, sessionId);

  /** Whether the model server got a request holding both texts: the second turn saw the first. */
  const sawBoth = (first: string, second: string) =>
    e.models.requests.some((r) => {
      const body = JSON.stringify(r.body);
      return body.includes(first) && body.includes(second);
    });

  it.each([
    ['opencode', 'created by opencode run'],
    ['gemini', 'created by gemini headless'],
    ['claude', 'created by claude -p'],
  ])(
    '%s: creates a file, applies it, records usage; a follow-up resumes the same session',
    async (agent, content) => {
      const repo = await e.repos.repo({ 'README.md': '# demo\n' });
      const first = `Please create hello.txt with content ${content}`;
      const created = await headlessTask({ project: repo, agent, input: first });
      expect(created.changes.map((c) => [c.operation, c.file_path])).toEqual([['create', 'hello.txt']]);
      expect(created.changes[0]?.diff).toContain(`+${content}`);
      await applyAll(e.client, created.changes);
      expect(await readFile(join(repo, 'hello.txt'), 'utf8')).toBe(content);

      const [session] = await sessionsOf(created.q.session_id);
      expect(session).toMatchObject({ agent, backend: 'pty', status: 'idle' });
      expect(session?.agent_session_id).toEqual(expect.any(String));
      expect(session?.input_tokens).toBeGreaterThanOrEqual(USAGE.prompt_tokens);
      expect(session?.output_tokens).toBeGreaterThanOrEqual(USAGE.completion_tokens);
      if (agent !== 'gemini') expect(session?.cost).toBeGreaterThan(0);

      const second = 'Please edit README.md: replace # demo with # demo, resumed';
      const edited = await headlessTask({ project: repo, agent, input: second, chat_id: created.q.chat_id });
      // The scripted Gemini wire answers any conversation that holds a tool result (the first
      // turn's) with text, so gemini's follow-up edits nothing; all show the resume.
      const edits = agent !== 'gemini';
      expect(edited.changes.map((c) => [c.operation, c.file_path])).toEqual(
        edits ? [['edit', 'README.md']] : [],
      );
      if (edits) expect(edited.changes[0]?.diff).toContain('+# demo, resumed');
      const [after] = await sessionsOf(created.q.session_id);
      expect(after?.agent_session_id).toBe(session?.agent_session_id);
      expect(after?.input_tokens).toBeGreaterThan(session?.input_tokens ?? 0);
      expect(sawBoth(first, second)).toBe(true);
    },
    400_000,
  );

  it('codex: resumes its thread and records the usage of each run, not the thread totals', async () => {
    // Offline, `codex exec` has no metadata for the model and so offers no apply_patch tool: the
    // scripted model answers with text and the worktree stays as it was. What is checked here is the
    // session: the resume, and the usage codex reports as thread totals.
    const repo = await e.repos.repo({ 'README.md': '# demo\n' });
    const responses = () => e.models.requests.filter((r) => r.wire === 'responses').length;
    const before = responses();
    const first = 'Please create codex.txt with content from codex';
    const a = await headlessTask({ project: repo, agent: 'codex', input: first });
    const second = 'Please delete README.md';
    const b = await headlessTask({ project: repo, agent: 'codex', input: second, chat_id: a.q.chat_id });
    const [session] = await sessionsOf(a.q.session_id);
    expect(session).toMatchObject({ agent: 'codex', backend: 'pty', status: 'idle' });
    expect(session?.agent_session_id).toEqual(expect.any(String));
    expect(b.q.chat_id).toBe(a.q.chat_id);
    // Each scripted response counts RESPONSES_USAGE once; codex's second report (the thread's
    // totals) would count the first run's again.
    const made = responses() - before;
    expect(made).toBeGreaterThanOrEqual(2);
    expect(session?.input_tokens).toBe(made * RESPONSES_USAGE.input_tokens);
    expect(session?.output_tokens).toBe(made * RESPONSES_USAGE.output_tokens);
    expect(sawBoth(first, second)).toBe(true);
  }, 200_000);

  it('opencode: a prompt starting with -- is the prompt, not an option', async () => {
    const repo = await e.repos.repo({ 'README.md': '# demo\n' });
    const { changes } = await headlessTask({
      project: repo,
      agent: 'opencode',
      input: '--help --version Please create dash.txt with content from a dashed prompt',
    });
    expect(changes.map((c) => [c.operation, c.file_path])).toEqual([['create', 'dash.txt']]);
    expect(changes[0]?.diff).toContain('+from a dashed prompt');
  }, 200_000);

  it('refuses an execution path the agent cannot take, naming what was wrong', async () => {
    const repo = await e.repos.repo({ 'README.md': '# demo\n' });
    const input = 'Please create x.txt with content x';
    expect(
      await callError(e.client, 'new_task', {
        project: repo,
        input,
        agent: 'gemini',
        execution_path: 'serve',
      }),
    ).toMatch(/E_INVALID_INPUT.*"serve" is for opencode only/);
    expect(await callError(e.client, 'new_task', { project: repo, input, execution_path: 'warp' })).toMatch(
      /E_INVALID_INPUT.*unknown execution_path/,
    );
  });
});
