/**
 * Per connection (one McpServer each): `resources/subscribe` to boocoder://inbox,
 * boocoder://tasks/{id} and its transcript, answered with `notifications/resources/updated` when a
 * task starts, ends, blocks or has changes reviewed, in this process or any other on the database
 * (TaskEvents hears both through LISTEN); and `logging/setLevel`, after which the connection gets
 * one `notifications/message` per task start and end. The SDK's McpServer has no API for either,
 * so the handlers go on its underlying Server.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ErrorCode,
  type LoggingLevel,
  McpError,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { findTask } from '../db/tasks.js';
import type { Deps } from '../services/deps.js';
import type { TaskActivity } from '../services/task-events.js';
import { INBOX_URI } from '../tools/list-inbox.js';
import { transcriptUri } from '../tools/views.js';

/** Subscriptions one connection may hold: each costs a set entry and a check per task activity. */
export const MAX_SUBSCRIPTIONS = 100;

const TASK_URI_RE =
  /^boocoder:\/\/tasks\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/transcript)?$/;
const LEVELS: LoggingLevel[] = [
  'debug',
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
];

export function taskUri(taskId: string): string {
  return `boocoder://tasks/${taskId}`;
}

interface Connection {
  uris: Set<string>;
}

const connections = new WeakMap<McpServer, Connection>();

/**
 * True while the connection of `server` holds a resource subscription: a session registry that
 * evicts idle sessions must keep such a one (its client waits for updates, sending nothing).
 */
export function hasSubscriptions(server: McpServer): boolean {
  return (connections.get(server)?.uris.size ?? 0) > 0;
}

function subscribable(uri: string): boolean {
  return uri === INBOX_URI || TASK_URI_RE.test(uri);
}

/** The subscribed URIs an activity changes. Reconnects (no task id) may have missed anything. */
function touched(uris: Set<string>, a: TaskActivity): string[] {
  if (a.taskId === '') return [...uris];
  const out: string[] = [];
  const task = taskUri(a.taskId);
  if (uris.has(task)) out.push(task);
  if (a.what !== 'reviewed' && uris.has(transcriptUri(a.taskId))) out.push(transcriptUri(a.taskId));
  // A start adds nothing to the inbox; an end, a block or a review may add or remove an entry.
  if (a.what !== 'started' && uris.has(INBOX_URI)) out.push(INBOX_URI);
  return out;
}

export function serveSubscriptions(server: McpServer, deps: Deps): void {
  const connection: Connection = { uris: new Set() };
  let level: LoggingLevel | undefined;
  // Heard only once the client subscribes or sets a level: a connection that does neither costs
  // nothing per task, and a server built without a database (stdio's listing server) never reads it.
  let stop: (() => void) | undefined;
  const watch = () => {
    stop ??= deps.events.onActivity(onActivity);
  };
  const inner = server.server;
  inner.registerCapabilities({ resources: { subscribe: true } });
  inner.setRequestHandler(SubscribeRequestSchema, (request) => {
    const uri = request.params.uri;
    if (!subscribable(uri))
      throw new McpError(
        ErrorCode.InvalidParams,
        `E_INVALID_INPUT: ${uri.slice(0, 100)} cannot be subscribed to; subscribe to ${INBOX_URI}, ${taskUri('{task_id}')} or its /transcript`,
      );
    if (!connection.uris.has(uri) && connection.uris.size >= MAX_SUBSCRIPTIONS)
      throw new McpError(
        ErrorCode.InvalidParams,
        `E_INVALID_INPUT: a connection holds at most ${MAX_SUBSCRIPTIONS} subscriptions; unsubscribe from one first`,
      );
    connection.uris.add(uri);
    watch();
    return {};
  });
  inner.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    connection.uris.delete(request.params.uri);
    return {};
  });
  // Replaces the SDK's own handler, whose level is private: this one is what log messages obey.
  inner.setRequestHandler(SetLevelRequestSchema, (request) => {
    level = request.params.level;
    watch();
    return {};
  });
  const logTask = async (a: TaskActivity) => {
    const task = await findTask(deps.db, a.taskId);
    if (!task) return;
    const event = a.what === 'started' ? 'task started' : `task ${task.state}`;
    await inner.sendLoggingMessage({
      level: task.state === 'failed' ? 'warning' : 'info',
      logger: 'boocoder',
      data: {
        event,
        task_id: task.id,
        agent: task.agent,
        state: task.state,
        ...(task.errorCode ? { error_code: task.errorCode } : {}),
      },
    });
  };
  const onActivity = (a: TaskActivity) => {
    for (const uri of touched(connection.uris, a))
      inner
        .sendResourceUpdated({ uri })
        .catch((err: unknown) => deps.logger.debug('update not sent', { err }));
    const wantsInfo = level !== undefined && LEVELS.indexOf(level) <= LEVELS.indexOf('info');
    if (wantsInfo && a.taskId !== '' && (a.what === 'started' || a.what === 'done'))
      logTask(a).catch((err: unknown) => deps.logger.debug('log message not sent', { err }));
  };
  connections.set(server, connection);
  const previous = inner.onclose;
  inner.onclose = () => {
    stop?.();
    connection.uris.clear();
    previous?.();
  };
}
