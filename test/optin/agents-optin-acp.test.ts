/**
 * Opt-in (BOOCODER_OPTIN_AGENTS=qwen,claude or all): the REAL Qwen Code and claude-agent-acp over
 * ACP, on Node 22 (their `engines` ask for it), end to end through boocoder and a real MCP client,
 * driven offline by the scripted model server (OpenAI chat-completions for Qwen, Anthropic Messages
 * for Claude): probe, then create/edit/delete as three tasks of one chat (the later two warm
 * follow-ups) → pending changes → apply_change, and usage on the chat's agent session. Assertions
 * are on the worktree's diff and the repository, never on what the agent says it did.
 */
import { expect, it } from 'vitest';
import { ANTHROPIC_USAGE } from '../fixtures/model-server/anthropic-wire.js';
import { type ModelServer, USAGE } from '../fixtures/model-server/model-server.js';
import {
  applyCrudChanges,
  CRUD_FILES,
  changesOf,
  closeWarmAgents,
  crudPrompts,
  followUp,
  type Queued,
  runTaskToEnd,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { callOk } from '../helpers/boocoder-app.js';
import { describeOptinAgent, ensureOptinAgent, type OptinAgentName } from '../helpers/optin-agents.js';
import { snapshot } from '../helpers/worktrees-temp-repo.js';

interface Case {
  /** The config-file entry that runs the agent on Node 22 against the scripted model server. */
  config: (node: string, entry: string, models: ModelServer) => Record<string, unknown>;
  version: string;
  /** Tokens the scripted model reports per call: every task makes at least two calls. */
  perCall: { input: number; output: number };
  /** Whether the agent reports a cost. */
  costs: boolean;
}

const CASES: Record<OptinAgentName, Case> = {
  qwen: {
    config: (node, entry, models) => ({
      command: node,
      args: [entry, '--acp', '--auth-type', 'openai', '--openai-base-url', models.baseUrl],
      versionArgs: [entry, '--version'],
      env: { OPENAI_API_KEY: 'not-a-real-key', OPENAI_MODEL: 'scripted-model' },
    }),
    version: '0.24.4',
    perCall: { input: USAGE.prompt_tokens, output: USAGE.completion_tokens },
    costs: false,
  },
  claude: {
    config: (node, entry, models) => ({
      command: node,
      args: [entry],
      env: {
        ANTHROPIC_BASE_URL: models.anthropicBaseUrl,
        ANTHROPIC_API_KEY: 'not-a-real-key',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        // Claude Code refuses to run as root unless told it is in a sandbox (CI runs as root).
        IS_SANDBOX: '1',
      },
    }),
    version: '0.101.0',
    perCall: { input: ANTHROPIC_USAGE.input_tokens, output: ANTHROPIC_USAGE.output_tokens },
    costs: true,
  },
};

for (const [name, c] of Object.entries(CASES) as [OptinAgentName, Case][]) {
  describeOptinAgent(name, `the real ${name} over ACP, end to end`, (ctx) => {
    const e = useAgentBoocoder(
      ctx,
      async () => {
        const { node, entry } = await ensureOptinAgent(name);
        return {
          // Each task's own turn makes its tool call although the history holds earlier turns' results.
          models: { perUserTurn: true },
          config: (models: ModelServer) => ({ agents: { [name]: c.config(node, entry, models) } }),
          env: { BOOCODER_TASK_TIMEOUT_MS: '180000' },
          files: CRUD_FILES,
        };
      },
      600_000,
    );

    it('is probed: its version, and ACP', async () => {
      const { agents } = await callOk<{ agents: Record<string, unknown>[] }>(e.client, 'probe_agents', {
        refresh: true,
      });
      expect(agents.find((a) => a.name === name)).toMatchObject({ version: c.version, supports_acp: true });
    }, 120_000);

    it('creates, edits and deletes files in one chat; the changes apply; usage is recorded', async () => {
      const { client, models, repo } = e;
      const before = await snapshot(repo);
      // One chat: each later task is a warm follow-up of the one before.
      const queued: Queued[] = [];
      for (const input of crudPrompts(name)) {
        const previous = queued.at(-1);
        const { queued: q, done } = await runTaskToEnd(client, {
          project: repo,
          input,
          agent: name,
          ...(previous ? followUp(previous) : {}),
        });
        expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
        queued.push(q);
      }
      expect(models.unhandled).toEqual([]);
      // Nothing reaches the repository before a change is applied.
      expect(await snapshot(repo)).toEqual(before);

      await applyCrudChanges(e, name, queued, `hi from ${name}`);

      const session = await soleAgentSessionOf<Record<string, number>>(client, queued[0]?.session_id ?? '');
      expect(session.input_tokens).toBeGreaterThanOrEqual(6 * c.perCall.input);
      expect(session.output_tokens).toBeGreaterThanOrEqual(6 * c.perCall.output);
      if (c.costs) expect(session.cost).toBeGreaterThan(0);
      else expect(session.cost).toBe(0);
      await closeWarmAgents(e);
    }, 600_000);

    // claude's headless path runs the `claude` CLI, which the CI suite covers; Qwen's is its own.
    it.runIf(name === 'qwen')(
      'headless: a file, then a resumed follow-up in the same session; usage per run',
      async () => {
        const { client, repo } = e;
        const run = (input: string, previous?: Queued) =>
          runTaskToEnd(client, {
            project: repo,
            input,
            agent: name,
            execution_path: 'qwen',
            ...(previous ? followUp(previous) : {}),
          });
        const first = await run('Please create headless.txt with content from qwen -p');
        expect(first.done).toMatchObject({ state: 'completed', pending_changes: 1 });
        const before = await soleAgentSessionOf<Record<string, number | string>>(
          client,
          first.queued.session_id,
        );
        expect(before).toMatchObject({ backend: 'qwen', input_tokens: 2 * c.perCall.input });
        const second = await run('Please create again.txt with content resumed', first.queued);
        expect(second.done).toMatchObject({ state: 'completed', pending_changes: 1 });
        const after = await soleAgentSessionOf<Record<string, number | string>>(
          client,
          first.queued.session_id,
        );
        // The same Qwen session, and only this run's tokens added (Qwen reports running totals).
        expect(after.agent_session_id).toBe(before.agent_session_id);
        expect(after.input_tokens).toBe(4 * c.perCall.input);
        const changes = await changesOf(client, { task_id: second.queued.task_id });
        expect(changes.map((ch) => [ch.operation, ch.file_path])).toEqual([['create', 'again.txt']]);
      },
      300_000,
    );
  });
}
