/**
 * Task transcripts through a real MCP client over HTTP, on both databases: the ACP test agent's
 * messages and tool calls become ordered events (get_transcript, the markdown resource), get_task's
 * progress names what the agent is doing, and a transcript past its bound is cut in the middle.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { TranscriptRecorder } from '../../src/transcripts/transcript-recorder.js';
import { callOk, connectHttpClient, startTestBoocoder, type TestBoocoder } from '../helpers/boocoder-app.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { type TempRepos, tempRepos } from '../helpers/worktrees-temp-repo.js';

interface Transcript {
  state: string;
  events: { seq: number; kind: string; data: Record<string, unknown> }[];
  gaps: { after_seq: number; before_seq: number; missing: number }[];
  last_seq: number;
  next_after: number | null;
}

describeEachDatabase('task transcripts', (ctx) => {
  let boo: TestBoocoder;
  let client: Client;
  let repos: TempRepos;
  let repo: string;

  beforeAll(async () => {
    boo = await startTestBoocoder(ctx.db);
    client = await connectHttpClient(boo.http.url);
    repos = tempRepos();
    repo = await repos.repo({ 'README.md': '# demo\n' });
  });

  afterAll(async () => {
    await client?.close();
    await boo?.close();
    await repos?.cleanup();
  });

  const queue = (input: string) => callOk<{ task_id: string }>(client, 'new_task', { project: repo, input });
  const settle = async (taskId: string) => {
    for (;;) {
      const t = await callOk<{ state: string }>(client, 'get_task', { task_id: taskId, wait_s: 30 });
      if (t.state !== 'pending' && t.state !== 'running') return t;
    }
  };

  it('records messages (coalesced) and tool calls in order, paths relative to the worktree', async () => {
    const { task_id } = await queue('say hel\nsay lo\ntool-write src/a.txt hi\nsay done');
    expect(await settle(task_id)).toMatchObject({ state: 'completed' });
    const t = await callOk<Transcript>(client, 'get_transcript', { task_id });
    expect(t.events.map((e) => [e.kind, e.data])).toEqual([
      ['message', { text: 'hello' }],
      [
        'tool',
        {
          id: expect.any(String),
          toolKind: 'edit',
          title: 'write src/a.txt',
          paths: ['src/a.txt'],
          status: 'completed',
        },
      ],
      ['message', { text: 'done' }],
    ]);
    expect(t.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(t).toMatchObject({ gaps: [], last_seq: 3, next_after: null });

    const page = await callOk<Transcript>(client, 'get_transcript', { task_id, after: 1, limit: 1 });
    expect(page.events.map((e) => e.seq)).toEqual([2]);
    expect(page.next_after).toBe(2);

    const read = await client.readResource({ uri: `boocoder://tasks/${task_id}/transcript` });
    const text = (read.contents[0] as { text: string }).text;
    expect(text).toContain('**edit: write src/a.txt** — `src/a.txt` (completed)');
    expect(text).toContain('hello');
    expect(text).not.toContain(boo.home);
  });

  it('records a permission request with the answer it got', async () => {
    const { task_id } = await queue('ask-permission\nwrite c.txt x');
    expect(await settle(task_id)).toMatchObject({ state: 'completed' });
    const t = await callOk<Transcript>(client, 'get_transcript', { task_id });
    expect(t.events.find((e) => e.kind === 'permission')?.data).toEqual({
      title: 'write c.txt',
      toolKind: 'edit',
      paths: ['c.txt'],
      outcome: 'allow_once',
    });
  });

  it("get_task's progress messages say what the agent is doing", async () => {
    const { task_id } = await queue('tool-write b.txt hi\nsleep 4000');
    const messages: string[] = [];
    const res = (await client.callTool({ name: 'get_task', arguments: { task_id, wait_s: 30 } }, undefined, {
      onprogress: (p) => {
        if (p.message) messages.push(p.message);
      },
      timeout: 60_000,
    })) as CallToolResult;
    expect(res.isError).toBeFalsy();
    expect(messages).toContain('editing b.txt');
  });

  it('keeps the first and last events of a long transcript, and says where it was cut', async () => {
    const { task_id } = await queue('say x');
    await settle(task_id);
    const recorder = await TranscriptRecorder.start({
      db: ctx.db,
      taskId: task_id,
      cwd: repo,
      logger: silentLogger,
      limits: { head: 3, tail: 4, maxTextChars: 5 },
    });
    recorder.onEvent({ kind: 'message', text: 'far too long' });
    for (let i = 0; i < 20; i++)
      recorder.onEvent({ kind: 'tool', id: `t${i}`, toolKind: 'read', status: 'completed' });
    await recorder.close();
    const t = await callOk<Transcript>(client, 'get_transcript', { task_id });
    // seq 1 is the task's own message, 2 the truncated text, 3..22 the tools: 3 kept, then the last 4.
    expect(t.events.map((e) => e.seq)).toEqual([1, 2, 3, 19, 20, 21, 22]);
    expect(t.events[1]?.data).toEqual({ text: 'far t', truncated: true });
    expect(t.gaps).toEqual([{ after_seq: 3, before_seq: 19, missing: 15 }]);
    const read = await client.readResource({ uri: `boocoder://tasks/${task_id}/transcript` });
    expect((read.contents[0] as { text: string }).text).toContain('15 events cut here');
  });
});
