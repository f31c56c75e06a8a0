/**
 * Splits a byte stream into newline-delimited JSON-RPC lines, with a cap per line. A line over the
 * cap is skipped, not buffered: only its first and last few kilobytes are kept, enough to find the
 * request id the refusal must answer. Blocks a client that sends one endless line from making the
 * process buffer it all (and, before this, from closing the whole connection with it).
 */
import type { Readable } from 'node:stream';

/** Bytes kept at each end of an oversized line: the top-level `"id"` sits at one end or the other. */
const EDGE_BYTES = 4096;
const NEWLINE = 0x0a;

export interface LineReaderOptions {
  /** The longest line accepted, in bytes without the newline; longer ones go to onOversized. */
  maxLineBytes: number;
  onLine: (line: Buffer) => void;
  /** An oversized line was dropped; `id` is its request id when one could be read, else null. */
  onOversized: (id: string | number | null, bytes: number) => void;
}

const ID_VALUE = String.raw`("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})`;
/** `{"jsonrpc":"2.0","id":7,...` (most clients) or `{"id":7,...`. */
const HEAD_ID = new RegExp(String.raw`^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*${ID_VALUE}`);
/** `...,"jsonrpc":"2.0","id":7}` (the TypeScript SDK puts the id last). */
const TAIL_ID = new RegExp(String.raw`,\s*"id"\s*:\s*${ID_VALUE}\s*\}\s*$`);

/** The request id of a message seen only by its two ends, or null when neither end shows one. */
export function requestIdFromEdges(head: string, tail: string): string | number | null {
  const match = HEAD_ID.exec(head) ?? TAIL_ID.exec(tail);
  const raw = match?.[1];
  if (raw === undefined) return null;
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'string' || (typeof value === 'number' && Number.isSafeInteger(value))
      ? value
      : null;
  } catch {
    return null;
  }
}

export class LineReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Set while skipping an oversized line: its size so far and its first bytes. */
  private skipping: { bytes: number; head: Buffer; tail: Buffer } | undefined;

  constructor(private readonly o: LineReaderOptions) {}

  /** Reads `stream` until it ends; the caller listens for end/close itself. */
  attach(stream: Readable): void {
    stream.on('data', (chunk: Buffer) => this.push(chunk));
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      this.take(chunk.subarray(start, end));
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  }

  private take(part: Buffer): void {
    if (part.length === 0) return;
    if (this.skipping) {
      this.skip(part);
      return;
    }
    if (this.buffered + part.length <= this.o.maxLineBytes) {
      this.chunks.push(part);
      this.buffered += part.length;
      return;
    }
    const sofar = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.skipping = {
      bytes: sofar.length,
      head: sofar.subarray(0, EDGE_BYTES),
      tail: sofar.subarray(-EDGE_BYTES),
    };
    this.skip(part);
  }

  private skip(part: Buffer): void {
    const s = this.skipping as NonNullable<typeof this.skipping>;
    s.bytes += part.length;
    if (s.head.length < EDGE_BYTES)
      s.head = Buffer.concat([s.head, part.subarray(0, EDGE_BYTES - s.head.length)]);
    s.tail = Buffer.concat([s.tail, part.subarray(-EDGE_BYTES)]).subarray(-EDGE_BYTES);
  }

  private endLine(): void {
    if (this.skipping) {
      const { bytes, head, tail } = this.skipping;
      this.skipping = undefined;
      this.o.onOversized(requestIdFromEdges(head.toString('utf8'), tail.toString('utf8')), bytes);
      return;
    }
    if (this.buffered === 0) return;
    const line = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.o.onLine(line);
  }
}

/** The JSON-RPC error a refused oversized request gets; the connection goes on. */
export function oversizedError(id: string | number | null, bytes: number, maxLineBytes: number): string {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: {
      code: -32600,
      message: `E_INVALID_INPUT: the message is ${mib(bytes)}, over boocoder's ${mib(maxLineBytes)} limit; send smaller arguments (split the work, or pass file paths instead of contents)`,
    },
  })}\n`;
}
