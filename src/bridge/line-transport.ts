/**
 * An MCP server transport over newline-delimited JSON-RPC on a pair of streams (stdin/stdout),
 * like the SDK's StdioServerTransport but with a cap per message instead of per buffer: an
 * oversized request is answered with a JSON-RPC error for its id and the connection goes on (the
 * SDK's transport closes itself, and with it the client's whole session, on one big message).
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { LineReader, oversizedError } from './line-reader.js';

export class LineServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private closed = false;
  private readonly reader: LineReader;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly maxMessageBytes: number,
  ) {
    this.reader = new LineReader({
      maxLineBytes: maxMessageBytes,
      onLine: (line) => this.receive(line),
      onOversized: (id, bytes) => {
        this.onerror?.(new Error(`refused a ${bytes}-byte message over the ${maxMessageBytes}-byte limit`));
        this.output.write(oversizedError(id, bytes, this.maxMessageBytes));
      },
    });
  }

  private readonly onData = (chunk: Buffer) => this.reader.push(chunk);
  private readonly onEnd = () => void this.close();
  private readonly onStreamError = (err: Error) => this.onerror?.(err);

  private receive(line: Buffer): void {
    let message: JSONRPCMessage;
    try {
      message = JSONRPCMessageSchema.parse(JSON.parse(line.toString('utf8')));
    } catch (err) {
      this.onerror?.(err as Error);
      return;
    }
    this.onmessage?.(message);
  }

  async start(): Promise<void> {
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('error', this.onStreamError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.output.write(`${JSON.stringify(message)}\n`)) resolve();
      else this.output.once('drain', resolve);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('error', this.onStreamError);
    this.input.pause();
    this.onclose?.();
  }
}
