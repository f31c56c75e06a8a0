/**
 * The task resources: boocoder://inbox (JSON, as list_inbox), boocoder://tasks/{id} (JSON, as
 * get_task) and boocoder://tasks/{id}/transcript (markdown); subscriptions.ts serves their
 * updates. Resource reads bypass the
 * tools' error shaping, so errors are mapped here: a driver error must not reach the client verbatim.
 */
import { type McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { isBoocoderError, toPublicError } from '../errors.js';
import type { Deps } from '../services/deps.js';
import { listInbox } from '../services/inbox.js';
import { getTask } from '../services/tasks.js';
import { readTranscriptMarkdown } from '../services/transcripts.js';
import { INBOX_URI, toInboxEntryView } from '../tools/list-inbox.js';
import { toTaskView, transcriptUri } from '../tools/views.js';
import { taskUri } from './subscriptions.js';

const json = (uri: string, value: unknown) => ({
  contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
});

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id in a resource URI, checked: anything else is refused before it reaches SQL. */
export function checkedUuid(value: unknown, what: string): string {
  const id = String(value);
  if (!UUID_RE.test(id)) throw new Error(`E_INVALID_INPUT: not a ${what} id: ${id.slice(0, 40)}`);
  return id;
}

/** Runs a resource read; a non-domain error is logged and shown only as E_INTERNAL. */
export async function readResource<T>(deps: Deps, what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!isBoocoderError(err)) deps.logger.error(`reading ${what} failed`, { err });
    const e = toPublicError(err);
    throw new Error(`${e.code}: ${e.message}`);
  }
}

export function registerTaskResources(server: McpServer, deps: Deps): void {
  server.registerResource(
    'inbox',
    INBOX_URI,
    { title: 'What needs attention (as list_inbox)', mimeType: 'application/json' },
    async () => {
      const { entries } = await readResource(deps, 'the inbox', () => listInbox(deps, { limit: 50 }));
      return json(INBOX_URI, { entries: entries.map(toInboxEntryView) });
    },
  );
  server.registerResource(
    'task',
    new ResourceTemplate(taskUri('{task_id}'), { list: undefined }),
    { title: 'A task (as get_task)', mimeType: 'application/json' },
    async (_uri, vars) => {
      const id = checkedUuid(vars.task_id, 'task');
      const found = await readResource(deps, 'a task', () => getTask(deps, id));
      return json(taskUri(id), { ...toTaskView(found.task), pending_changes: found.pendingChanges });
    },
  );
  server.registerResource(
    'task-transcript',
    new ResourceTemplate(transcriptUri('{task_id}'), { list: undefined }),
    { title: "A task's transcript: what its agent did", mimeType: 'text/markdown' },
    async (_uri, vars) => {
      const id = checkedUuid(vars.task_id, 'task');
      const text = await readResource(deps, 'a transcript', () => readTranscriptMarkdown(deps, id));
      return { contents: [{ uri: transcriptUri(id), mimeType: 'text/markdown', text }] };
    },
  );
}
