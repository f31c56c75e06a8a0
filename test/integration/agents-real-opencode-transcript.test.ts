/**
 * The REAL opencode over ACP, watched while it works, on both databases: a client subscribed to
 * the task hears it end, get_task's progress names the file the agent is writing, and the
 * transcript holds the tool call that wrote it. The model server is reached through a gate that
 * holds the model call after the tool ran until the client has seen that progress: the window is
 * held open by the test, not guessed by a delay.
 */

import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CRUD_FILES,
  changesOf,
  opencodeAgentConfig,
  runTaskToEnd,
  useAgentBoocoder,
} from '../helpers/agent-e2e.js';
import { callOk } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';

interface Gate {
  url: string;
  open(): void;
  close(): Promise<void>;
}

/** A proxy to the model server that holds every request carrying a tool result until open(). */
async function modelGate(target: () => string): Promise<Gate> {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (body.toString('utf8').includes('"role":"tool"')) await opened;
    const answer = await fetch(`${target()}${req.url ?? '/'}`, {
      method: req.method ?? 'POST',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
      ...(body.length > 0 ? { body } : {}),
    });
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    open,
    close: () => {
      open();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describeEachDatabase('the real opencode, watched: transcript, progress, subscription', (ctx) => {
  let gate: Gate;
  let modelsUrl = '';
  beforeAll(async () => {
    gate = await modelGate(() => modelsUrl);
  });
  const e = useAgentBoocoder(ctx, {
    config: (models) => {
      modelsUrl = models.baseUrl.replace(/\/v1$/, '');
      return { defaultAgent: 'opencode', agents: { opencode: opencodeAgentConfig(gate.url) } };
    },
    env: { BOOCODER_TASK_TIMEOUT_MS: '120000' },
    files: CRUD_FILES,
  });
  afterAll(() => gate?.close());

  it('names the file in progress, records the write in the transcript, and tells the subscriber', async () => {
    const { client, repo } = e;
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updated.push(n.params.uri);
    });
    const { task_id } = await callOk<{ task_id: string }>(client, 'new_task', {
      project: repo,
      input: 'Please create hello.txt with content hi from opencode',
    });
    const taskUri = `boocoder://tasks/${task_id}`;
    await client.subscribeResource({ uri: taskUri });

    const progress: string[] = [];
    let state = 'pending';
    while (state === 'pending' || state === 'running') {
      const res = await client.callTool({ name: 'get_task', arguments: { task_id, wait_s: 55 } }, undefined, {
        timeout: 120_000,
        onprogress: (p) => {
          if (!p.message) return;
          progress.push(p.message);
          if (p.message.includes('hello.txt')) gate.open();
        },
      });
      state = (res.structuredContent as { state: string }).state;
    }
    expect(state).toBe('completed');
    // The gate opened only on such a message: that the task completed at all says it came.
    expect(progress.filter((m) => m.includes('hello.txt'))).not.toEqual([]);
    expect(e.models.unhandled).toEqual([]);

    const transcript = await callOk<{ events: { kind: string; data: Record<string, unknown> }[] }>(
      client,
      'get_transcript',
      { task_id },
    );
    const writes = transcript.events.filter(
      (ev) => ev.kind === 'tool' && (ev.data.paths as string[] | undefined)?.includes('hello.txt'),
    );
    expect(writes.length).toBeGreaterThanOrEqual(1);
    expect(writes.at(-1)?.data).toMatchObject({ toolKind: 'edit', status: 'completed' });
    // What the transcript says was written is what the worktree's change holds.
    const [change] = await changesOf(client, { task_id });
    expect(change).toMatchObject({ operation: 'create', file_path: 'hello.txt' });
    const worktree = (await callOk<{ worktree_path: string }>(client, 'get_task', { task_id })).worktree_path;
    expect(await readFile(join(worktree, 'hello.txt'), 'utf8')).toBe('hi from opencode');

    // The end reached the subscriber (notifications may trail the tool result a moment).
    while (!updated.includes(taskUri)) await new Promise((resolve) => setTimeout(resolve, 100));
  }, 400_000);

  it.each(['serve', 'headless'])(
    'over execution_path %s too, the transcript holds the tool call that wrote the file',
    async (path) => {
      gate.open();
      const file = `from-${path}.txt`;
      const { done, queued } = await runTaskToEnd(e.client, {
        project: e.repo,
        input: `Please create ${file} with content hi`,
        execution_path: path,
      });
      expect(done).toMatchObject({ state: 'completed', pending_changes: 1 });
      const transcript = await callOk<{ events: { kind: string; data: Record<string, unknown> }[] }>(
        e.client,
        'get_transcript',
        { task_id: queued.task_id },
      );
      const writes = transcript.events.filter(
        (ev) => ev.kind === 'tool' && (ev.data.paths as string[] | undefined)?.includes(file),
      );
      expect(writes.at(-1)?.data).toMatchObject({ toolKind: 'write', status: 'completed' });
      // Each model call's usage, as the backend reported it.
      expect(transcript.events.filter((ev) => ev.kind === 'usage').length).toBeGreaterThanOrEqual(1);
    },
    400_000,
  );
});
