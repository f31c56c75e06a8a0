/**
 * The native agent `boocode` under the `ask` permission policy, on both databases and wire formats:
 * its write waits as a blocked task until answer_permission; probe_agents lists it as installed;
 * a follow-up in the same chat after a restart of boocoder continues the stored conversation.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { ModelServer } from '../fixtures/model-server/model-server.js';
import { followUp, type Queued, settledTask, useAgentBoocoder } from '../helpers/agent-e2e.js';
import { callOk, connectHttpClient, startTestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface TaskOut {
  task_id: string;
  state: string;
  error: string | null;
  pending_changes: number;
  worktree_path?: string;
}

const WIRES = [
  { api: 'openai', baseUrl: (m: ModelServer) => m.baseUrl },
  { api: 'anthropic', baseUrl: (m: ModelServer) => m.anthropicBaseUrl },
] as const;

for (const w of WIRES)
  describeEachDatabase(
    `the native agent boocode over ${w.api} under the ask policy, and across a restart`,
    (ctx) => {
      const e = useAgentBoocoder(ctx, {
        config: (models) => ({
          permissions: 'ask',
          agents: { boocode: { api: w.api, baseUrl: w.baseUrl(models), model: 'scripted-model' } },
        }),
        models: { perUserTurn: true },
      });

      it('is listed by probe_agents as installed (configured with an endpoint)', async () => {
        const { agents } = await callOk<{ agents: { name: string; installed: boolean }[] }>(
          e.client,
          'probe_agents',
          {},
        );
        expect(agents.find((a) => a.name === 'boocode')).toMatchObject({ installed: true });
      });

      it('blocks on its write until a human allows it; a rejection writes nothing', async () => {
        const queued = await callOk<Queued>(e.client, 'new_task', {
          project: e.repo,
          agent: 'boocode',
          input: 'Please create asked.txt with content yes',
        });
        const blocked = await settledTask<TaskOut>(e.client, queued.task_id);
        expect(blocked.state).toBe('blocked');
        const { requests } = await callOk<{ requests: { request_id: string; kind: string }[] }>(
          e.client,
          'list_permission_requests',
          { task_id: queued.task_id },
        );
        expect(requests).toHaveLength(1);
        expect(requests[0]?.kind).toBe('edit');
        const worktree = blocked.worktree_path as string;
        expect(existsSync(join(worktree, 'asked.txt'))).toBe(false);
        await callOk(e.client, 'answer_permission', {
          request_id: requests[0]?.request_id,
          option_id: 'allow',
        });
        const done = await settledTask<TaskOut>(e.client, queued.task_id);
        expect(done).toMatchObject({ state: 'completed', error: null, pending_changes: 1 });
        expect(await readFile(join(worktree, 'asked.txt'), 'utf8')).toBe('yes');

        const refused = await callOk<Queued>(e.client, 'new_task', {
          ...followUp(queued),
          project: e.repo,
          agent: 'boocode',
          input: 'Please create refused.txt with content no',
        });
        expect((await settledTask<TaskOut>(e.client, refused.task_id)).state).toBe('blocked');
        const next = await callOk<{ requests: { request_id: string }[] }>(
          e.client,
          'list_permission_requests',
          {
            task_id: refused.task_id,
          },
        );
        await callOk(e.client, 'answer_permission', {
          request_id: next.requests[0]?.request_id,
          option_id: 'reject',
        });
        const after = await settledTask<TaskOut>(e.client, refused.task_id);
        expect(after).toMatchObject({ state: 'completed', pending_changes: 0 });
        expect(existsSync(join(worktree, 'refused.txt'))).toBe(false);
      }, 240_000);

      it('continues a chat after boocoder restarted: the conversation comes from the database', async () => {
        const first = await callOk<Queued>(e.client, 'new_task', {
          project: e.repo,
          agent: 'boocode',
          input: 'Please list nothing and remember the word pineapple',
        });
        expect((await settledTask<TaskOut>(e.client, first.task_id)).state).toBe('completed');
        // A second boocoder on the same database, home and config file: a new process, with none of
        // the first one's memory (the first keeps running: the native backend keeps nothing in it).
        const again = await startTestBoocoder(ctx.db, {
          BOOCODER_HOME: e.boo.home,
          BOOCODER_PG_DIR: join(e.boo.home, 'pg'),
          HOME: e.user.path,
          BOOCODER_CONFIG: e.boo.config.configFile,
        });
        const client = await connectHttpClient(again.http.url);
        try {
          const before = e.models.requests.length;
          const second = await callOk<Queued>(client, 'new_task', {
            ...followUp(first),
            project: e.repo,
            agent: 'boocode',
            input: 'What was the word?',
          });
          expect(await settledTask<TaskOut>(client, second.task_id)).toMatchObject({
            state: 'completed',
            error: null,
          });
          const sent = JSON.stringify(e.models.requests.slice(before).map((r) => r.body));
          expect(sent).toContain('remember the word pineapple');
          expect(sent).toContain('What was the word?');
        } finally {
          await client.close();
          await again.close();
        }
      }, 240_000);
    },
  );
