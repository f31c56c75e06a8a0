/**
 * `boocoder stdio` in front of the daemon's MCP socket. Until the daemon is up (its first start
 * creates the embedded database and takes seconds) this process answers the messages whose answer
 * does not depend on state (`initialize`, `ping`, listing tools and resources) from an
 * McpServer built by the same registration code as the daemon's, so a client such as Claude Code
 * has boocoder's tools on its first turn; everything else is held, in order, and sent once the
 * daemon is there. The bridge then opens the daemon session with the client's own `initialize`
 * and from there forwards lines both ways without parsing them.
 *
 * Every line from the client is size-checked first: a message over the cap gets a JSON-RPC error
 * for its id here and never reaches the socket (which would drop the whole connection).
 */
import { connect, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { LineReader, oversizedError } from './line-reader.js';

/** Answered by the local server while the daemon starts: none of them reads or changes state. */
const LOCAL_METHODS = new Set([
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'prompts/list',
]);
/** The id of the bridge's own initialize towards the daemon; no client request uses this prefix. */
const BRIDGE_INIT_ID = 'boocoder-bridge:initialize';

export interface StdioFrontOptions {
  stdin: Readable;
  stdout: Writable;
  logger: Logger;
  /** The daemon's MCP socket, once the daemon is found or started (rejects when it cannot be). */
  daemonSocket: Promise<string>;
  /** The longest message accepted from the client, in bytes. */
  maxMessageBytes: number;
  /**
   * Builds the server that answers while the daemon starts. Absent when its answers could differ
   * from the daemon's (a daemon of another version is running): then everything waits.
   */
  localServer?: () => McpServer;
}

type Mode = 'pending' | 'handshake' | 'open' | 'done';

interface Parsed {
  id?: string | number;
  method?: string;
  params?: unknown;
}

function parse(line: Buffer): Parsed | undefined {
  try {
    const value: unknown = JSON.parse(line.toString('utf8'));
    return value && typeof value === 'object' ? (value as Parsed) : undefined;
  } catch {
    return undefined;
  }
}

function unavailable(reason: string, cause?: unknown): BoocoderError {
  return new BoocoderError('E_DAEMON_UNAVAILABLE', `lost the boocoder daemon: ${reason}`, {}, { cause });
}

/**
 * Runs until stdin closes (resolves) or the daemon cannot be reached or goes away (rejects with
 * E_DAEMON_UNAVAILABLE after answering every held request; the caller exits non-zero).
 */
export function runStdioFront(o: StdioFrontOptions): Promise<void> {
  let mode: Mode = 'pending';
  const held: Buffer[] = [];
  let socket: Socket | undefined;
  let clientInit: Parsed | undefined;
  // A promise, so messages arriving while the server is being built all reach the same one.
  let local: Promise<{ send: (m: JSONRPCMessage) => Promise<void>; close: () => Promise<void> }> | undefined;

  const toClient = (text: string) => {
    if (!o.stdout.write(text) && socket) {
      socket.pause();
      o.stdout.once('drain', () => socket?.resume());
    }
  };
  const toDaemon = (line: Buffer) => {
    const s = socket as Socket;
    s.write(line);
    if (!s.write('\n')) {
      o.stdin.pause();
      s.once('drain', () => o.stdin.resume());
    }
  };

  const answerLocally = async (message: Parsed): Promise<void> => {
    local ??= (async () => {
      const server = (o.localServer as () => McpServer)();
      const [mine, its] = InMemoryTransport.createLinkedPair();
      mine.onmessage = (reply) => toClient(`${JSON.stringify(reply)}\n`);
      await server.connect(its);
      return { send: (m: JSONRPCMessage) => mine.send(m), close: () => server.close() };
    })();
    await (await local).send(message as JSONRPCMessage);
  };

  return new Promise<void>((resolve, reject) => {
    const finish = (error?: BoocoderError) => {
      if (mode === 'done') return;
      const wasOpen = mode === 'open';
      mode = 'done';
      o.stdin.off('end', onClientGone);
      o.stdin.off('close', onClientGone);
      void local?.then((l) => l.close());
      if (error) {
        // Every request still waiting gets its answer: the client must not hang on a held call.
        for (const line of held) {
          const m = parse(line);
          if (m?.id !== undefined && m.method)
            toClient(
              `${JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32603, message: `${error.code}: ${error.message}` } })}\n`,
            );
        }
        held.length = 0;
        socket?.destroy();
        reject(error);
        return;
      }
      if (wasOpen) socket?.end();
      else socket?.destroy();
      resolve();
    };
    const onClientGone = () => finish();

    const reader = new LineReader({
      maxLineBytes: o.maxMessageBytes,
      onOversized: (id, bytes) => {
        o.logger.warn('refused an oversized message from the MCP client', { bytes });
        toClient(oversizedError(id, bytes, o.maxMessageBytes));
      },
      onLine: (line) => {
        if (mode === 'open') return toDaemon(line);
        if (mode === 'done') return;
        const m = o.localServer ? parse(line) : undefined;
        if (m?.method === 'initialize' && m.id !== undefined && !clientInit && mode === 'pending') {
          clientInit = m;
          return void answerLocally(m);
        }
        if (clientInit && m?.method === 'notifications/initialized') return; // the bridge sends its own
        if (clientInit && m?.method && m.id !== undefined && LOCAL_METHODS.has(m.method))
          return void answerLocally(m);
        held.push(line);
      },
    });

    const open = () => {
      mode = 'open';
      for (const line of held.splice(0)) toDaemon(line);
    };

    const onDaemonLine = (line: Buffer) => {
      if (mode === 'handshake') {
        const m = parse(line) as (Parsed & { error?: { message?: string } }) | undefined;
        if (m?.id === BRIDGE_INIT_ID) {
          if (m.error)
            return finish(unavailable(`it refused the session (${m.error.message ?? 'no reason'})`));
          toDaemon(Buffer.from(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })));
          return open();
        }
      }
      if (mode !== 'done') toClient(`${line.toString('utf8')}\n`);
    };

    const attach = (path: string) => {
      if (mode === 'done') return;
      const s = connect(path);
      socket = s;
      let failure: unknown;
      const daemonReader = new LineReader({
        // The daemon is this user's own process; its answers (a large diff) are not capped.
        maxLineBytes: Number.MAX_SAFE_INTEGER,
        onLine: onDaemonLine,
        onOversized: () => {},
      });
      s.on('data', (chunk: Buffer) => daemonReader.push(chunk));
      s.on('error', (err) => {
        failure = err;
        o.logger.debug('daemon socket error', { err: err.message });
      });
      s.once('close', () => finish(unavailable('its socket closed', failure)));
      s.once('connect', () => {
        if (!clientInit) return open();
        mode = 'handshake';
        toDaemon(
          Buffer.from(
            JSON.stringify({
              jsonrpc: '2.0',
              id: BRIDGE_INIT_ID,
              method: 'initialize',
              params: clientInit.params,
            }),
          ),
        );
      });
    };

    o.stdin.on('data', (chunk: Buffer) => reader.push(chunk));
    o.stdin.once('end', onClientGone);
    o.stdin.once('close', onClientGone);
    o.stdout.once('error', onClientGone);
    o.daemonSocket.then(attach, (err: unknown) =>
      finish(err instanceof BoocoderError ? err : unavailable('it did not start', err)),
    );
  });
}
