/**
 * The native agent `boocode` end to end through boocoder and a real MCP client, on both databases
 * and both wire formats (OpenAI chat completions, Anthropic Messages), driven by the scripted model
 * server: new_task → get_task(wait) → list_pending_changes → apply_change. Its tools really ran in
 * the worktree: assertions are on the diffs and the repository.
 */
import { expect, it } from 'vitest';
import { ANTHROPIC_USAGE } from '../fixtures/model-server/anthropic-wire.js';
import { USAGE } from '../fixtures/model-server/chat-wire.js';
import { type ModelServer, STALL_PHRASE } from '../fixtures/model-server/model-server.js';
import {
  applyCrudChanges,
  CRUD_FILES,
  followUp,
  runCrudTasks,
  runTaskToEnd,
  settledTask,
  soleAgentSessionOf,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

async function until<T>(probe: () => T | undefined): Promise<T> {
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const WIRES = [
  {
    api: 'openai',
    baseUrl: (m: ModelServer) => m.baseUrl,
    wire: 'openai',
    usage: { input: USAGE.prompt_tokens, output: USAGE.completion_tokens },
    key: 'OPENAI_API_KEY',
  },
  {
    api: 'anthropic',
    baseUrl: (m: ModelServer) => m.anthropicBaseUrl,
    wire: 'anthropic',
    usage: { input: ANTHROPIC_USAGE.input_tokens, output: ANTHROPIC_USAGE.output_tokens },
    key: 'ANTHROPIC_API_KEY',
  },
] as const;

for (const w of WIRES) {
  describeEachDatabase(`the native agent boocode over ${w.api}, end to end`, (ctx) => {
    const e = useAgentBoocoder(ctx, {
      config: (models) => ({
        agents: {
          boocode: {
            api: w.api,
            baseUrl: w.baseUrl(models),
            model: 'scripted-model',
            env: { [w.key]: 'test-key' },
            prices: { 'scripted-model': { input: 2, output: 10 } },
          },
        },
      }),
      // The follow-up's conversation holds the first task's tool result: judge each user turn alone.
      models: { perUserTurn: true },
      // docs/ is there for the failing command: `rm -f docs` refuses a folder.
      files: { ...CRUD_FILES, 'docs/keep.md': 'kept\n' },
    });

    it("creates, edits and deletes files with its tools; the changes are attributed 'boocode' and apply; usage is recorded", async () => {
      const { client, models } = e;
      const queued = await runCrudTasks(e, 'boocode', { agent: 'boocode' });
      await applyCrudChanges(e, 'boocode', queued, 'hi from boocode');
      // Each task: one tool step, then the final answer; every request on this wire.
      expect(models.requests.every((r) => r.wire === w.wire)).toBe(true);
      const toolCalls = models.requests.flatMap((r) =>
        'toolCall' in r.answer ? [r.answer.toolCall.name] : [],
      );
      expect(toolCalls.sort()).toEqual(['edit_file', 'run_command', 'write_file']);
      for (const q of queued) {
        const session = await soleAgentSessionOf<Record<string, unknown>>(client, q.session_id);
        expect(session).toMatchObject({ agent: 'boocode', backend: 'native' });
        expect(session.input_tokens).toBe(2 * w.usage.input);
        expect(session.output_tokens).toBe(2 * w.usage.output);
      }
      // Its turn feeds the task's transcript like the other backends': the write, its outcome, usage.
      const transcript = await callOk<{ events: { kind: string; data: Record<string, unknown> }[] }>(
        client,
        'get_transcript',
        { task_id: queued[0]?.task_id },
      );
      expect(transcript.events.map((ev) => ev.data)).toContainEqual(
        expect.objectContaining({ toolKind: 'edit', paths: ['hello.txt'], status: 'completed' }),
      );
      expect(transcript.events.some((ev) => ev.kind === 'usage')).toBe(true);
      const task = await e.boo.app.deps.db.query<{
        execution_path: string;
        cost_tokens: number;
        cost: number;
        cost_currency: string;
      }>('SELECT execution_path, cost_tokens, cost, cost_currency FROM tasks WHERE id = $1', [
        queued[0]?.task_id,
      ]);
      expect(task.rows[0]).toMatchObject({
        execution_path: 'native',
        cost_tokens: 2 * (w.usage.input + w.usage.output),
        cost_currency: 'USD',
      });
      // From the config's prices: 2 and 10 USD per million input and output tokens, two model calls.
      expect(Number(task.rows[0]?.cost)).toBeCloseTo(
        (2 * w.usage.input * 2 + 2 * w.usage.output * 10) / 1e6,
        9,
      );
    }, 240_000);

    it('hands a failing command back to the model with its exit code; the task completes without changes', async () => {
      const { client, models } = e;
      const before = models.requests.length;
      // The scripted model deletes with `rm -f`, which refuses a folder: the command exits 1.
      const run = await runTaskToEnd(client, {
        project: e.repo,
        agent: 'boocode',
        input: 'Please delete docs',
      });
      expect(run.done).toMatchObject({ state: 'completed', error: null, pending_changes: 0 });
      const sent = JSON.stringify(models.requests.slice(before).map((r) => r.body));
      expect(sent).toContain('exit code 1');
    }, 240_000);

    it('a cancel aborts its streaming model request; the task ends cancelled', async () => {
      const { client, models } = e;
      const queued = await callOk<{ task_id: string }>(client, 'new_task', {
        project: e.repo,
        agent: 'boocode',
        input: `create stalled.txt with content never ${STALL_PHRASE}`,
      });
      const stalled = await until(() => models.requests.find((r) => r.stalled));
      await callOk(client, 'cancel_task', { task_id: queued.task_id });
      expect(await settledTask(client, queued.task_id)).toMatchObject({
        state: 'cancelled',
        pending_changes: 0,
      });
      expect(stalled.abandoned).toBe(true);
    }, 240_000);

    it('continues the chat in a follow-up task: the stored conversation is sent again', async () => {
      const { client, models } = e;
      const first = await runTaskToEnd(client, {
        project: e.repo,
        agent: 'boocode',
        input: 'Please create notes.txt with content first',
      });
      expect(first.done).toMatchObject({ state: 'completed' });
      const before = models.requests.length;
      const second = await runTaskToEnd(client, {
        ...followUp(first.queued),
        project: e.repo,
        agent: 'boocode',
        input: 'Please create more.txt with content second',
      });
      expect(second.done).toMatchObject({ state: 'completed', pending_changes: 1 });
      const sent = JSON.stringify(models.requests[before]?.body ?? {});
      // The first task's prompt travels with the second's: the chat was continued.
      expect(sent).toContain('notes.txt with content first');
      expect(sent).toContain('more.txt with content second');
    }, 240_000);
  });
}
