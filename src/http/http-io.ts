/**
 * Small node:http helpers for the endpoint: JSON answers, JSON-RPC error bodies and a bounded
 * body reader.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function sendRpcError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null }, headers);
}

export type BodyResult = { kind: 'ok'; value: unknown } | { kind: 'too-large' } | { kind: 'invalid-json' };

/**
 * Reads a JSON body, counting bytes as they arrive so an oversized (or endless) body is refused
 * without buffering it: a declared Content-Length over the limit is refused before reading.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve({ kind: 'too-large' });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.pause();
        resolve({ kind: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      try {
        resolve({ kind: 'ok', value: JSON.parse(Buffer.concat(chunks, size).toString('utf8')) });
      } catch {
        resolve({ kind: 'invalid-json' });
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export function containsInitialize(body: unknown): boolean {
  return Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body);
}

/** True when the body holds a JSON-RPC request (not a notification, not a response) other than initialize. */
export function containsWorkRequest(body: unknown): boolean {
  const isWork = (m: unknown) => {
    const msg = m as { method?: unknown; id?: unknown } | null;
    return (
      typeof msg === 'object' &&
      msg !== null &&
      typeof msg.method === 'string' &&
      msg.id !== undefined &&
      msg.method !== 'initialize'
    );
  };
  return Array.isArray(body) ? body.some(isWork) : isWork(body);
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
