/**
 * The McpServer `boocoder stdio` answers with while the daemon starts (stdio-front.ts). It is
 * built by createServer itself, so its initialize answer and tool list are the daemon's, not a
 * hand-kept copy that could drift. Only methods that read no state reach it; should a handler
 * ever run, its database says the daemon is not there yet instead of pretending.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AgentBackends } from '../agents/backends.js';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { createServer } from '../server.js';
import type { TaskEvents } from '../services/task-events.js';

function daemonNotUp(): never {
  throw new BoocoderError('E_DAEMON_UNAVAILABLE', 'the boocoder daemon is still starting; retry in a moment');
}

export function createListingServer(config: Config, logger: Logger): McpServer {
  const absent = new Proxy({}, { get: daemonNotUp });
  return createServer({
    config,
    logger,
    db: absent as Db,
    events: absent as TaskEvents,
    backends: absent as AgentBackends,
  });
}
