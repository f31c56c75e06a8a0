/**
 * `boocoder stdio` without DATABASE_URL: a thin pipe between the MCP client on stdin/stdout and
 * the local daemon's HTTP endpoint. It forwards raw JSON-RPC both ways without interpreting it,
 * so requests, responses and notifications in either direction (roots/list, progress,
 * cancellation...) pass unchanged. Only protocol goes to stdout; diagnostics go to the logger.
 */

import type { Readable, Writable } from 'node:stream';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { probeDaemonHealth } from './daemon-discovery.js';
import { fetchWithOwnSignal } from './fetch-own-signal.js';

export interface StdioBridgeOptions {
  /** The daemon's MCP endpoint, e.g. `http://127.0.0.1:7311/mcp`. */
  url: string;
  token?: string;
  stdin: Readable;
  stdout: Writable;
  logger: Logger;
}

/** Statuses after which this bridge's session cannot go on: gone (daemon restarted) or refused. */
const FATAL_STATUSES = new Set([401, 403, 404]);
const DELETE_TIMEOUT_MS = 2000;
const PROBE_TIMEOUT_MS = 2000;

function isFatal(err: unknown): boolean {
  // Anything but an HTTP answer (connection refused, reset) means the daemon is not there.
  if (!(err instanceof StreamableHTTPError)) return true;
  return err.code !== undefined && FATAL_STATUSES.has(err.code);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs the bridge until stdin closes (then ends the HTTP session with DELETE and resolves) or
 * the daemon goes away (then rejects with E_DAEMON_UNAVAILABLE; the caller exits non-zero).
 */
export async function runStdioBridge(options: StdioBridgeOptions): Promise<void> {
  const { url, token, stdin, stdout, logger } = options;
  const stdio = new StdioServerTransport(stdin, stdout);
  const http = new StreamableHTTPClientTransport(new URL(url), {
    fetch: fetchWithOwnSignal,
    requestInit: { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } },
  });
  // The client negotiates the protocol version; the HTTP side must then send it as a header.
  const initializeIds = new Set<string | number>();
  // One message at a time, in order: a notification (cancelled, initialized) must not overtake
  // the request it follows. Each send returns once the daemon has accepted the message.
  let queue: Promise<void> = Promise.resolve();
  let finished = false;
  let probing = false;

  return new Promise<void>((resolve, reject) => {
    const finish = async (error?: BoocoderError) => {
      if (finished) return;
      finished = true;
      stdin.off('end', onClientGone);
      stdin.off('close', onClientGone);
      stdout.off('error', onClientGone);
      if (!error) {
        await queue;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((done) => {
          timer = setTimeout(done, DELETE_TIMEOUT_MS);
          timer.unref();
        });
        await Promise.race([http.terminateSession(), timeout])
          .catch((err) => logger.debug('ending the daemon session failed', { err: describe(err) }))
          .finally(() => clearTimeout(timer));
      }
      await http.close().catch(() => {});
      await stdio.close().catch(() => {});
      if (error) reject(error);
      else resolve();
    };

    const fail = (reason: string, cause: unknown) => {
      if (finished) return;
      logger.error('lost the boocoder daemon', { reason, err: describe(cause) });
      void finish(
        new BoocoderError('E_DAEMON_UNAVAILABLE', `lost the boocoder daemon: ${reason}`, {}, { cause }),
      );
    };

    const onClientGone = () => {
      logger.debug('the MCP client closed stdin; ending the bridge');
      void finish();
    };

    const forward = async (message: JSONRPCMessage) => {
      if (finished) return;
      try {
        await http.send(message);
      } catch (err) {
        if (isFatal(err)) {
          fail('the daemon did not accept a message', err);
          return;
        }
        // A refusal of this one message (too large, malformed): answer it, keep the session.
        logger.warn('the daemon refused a message', { err: describe(err) });
        if (isJSONRPCRequest(message)) {
          const code = err instanceof StreamableHTTPError ? err.code : undefined;
          await stdio.send({
            jsonrpc: '2.0',
            id: message.id,
            error: { code: -32603, message: `the boocoder daemon refused the request (HTTP ${code})` },
          });
        }
      }
    };

    stdio.onmessage = (message) => {
      if (isJSONRPCRequest(message) && message.method === 'initialize') initializeIds.add(message.id);
      queue = queue.then(() => forward(message));
    };
    stdio.onerror = (err) => logger.warn('unreadable message from the MCP client', { err: describe(err) });

    http.onmessage = (message) => {
      if (isJSONRPCResultResponse(message) && initializeIds.delete(message.id)) {
        const version = message.result.protocolVersion;
        if (typeof version === 'string') http.setProtocolVersion(version);
      }
      stdio
        .send(message)
        .catch((err) => logger.warn('writing to the MCP client failed', { err: describe(err) }));
    };
    // Stream errors (an SSE stream cut mid-call, a failed reconnect) do not say whether the daemon
    // is gone or the network hiccupped: ask /healthz, and give up only when it does not answer.
    http.onerror = (err) => {
      if (finished) return;
      if (err instanceof StreamableHTTPError && isFatal(err)) {
        fail('the daemon refused the session', err);
        return;
      }
      if (probing) return;
      probing = true;
      void probeDaemonHealth(url, PROBE_TIMEOUT_MS).then((pid) => {
        probing = false;
        if (pid === undefined) fail('the daemon does not answer', err);
        else logger.warn('daemon connection error; the daemon is still up', { err: describe(err) });
      });
    };

    stdin.once('end', onClientGone);
    stdin.once('close', onClientGone);
    stdout.once('error', onClientGone);
    http
      .start()
      .then(() => stdio.start())
      .catch((err) => fail('could not start the bridge', err));
  });
}
