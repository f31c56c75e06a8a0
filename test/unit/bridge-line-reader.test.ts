/**
 * The stdio line reader: a message over the cap is skipped (never buffered whole) and answered
 * for its id, wherever the client's JSON encoder put the id; the lines around it pass unchanged.
 */
import { describe, expect, it } from 'vitest';
import { LineReader, oversizedError, requestIdFromEdges } from '../../src/bridge/line-reader.js';

function read(chunks: Buffer[], maxLineBytes: number) {
  const lines: string[] = [];
  const oversized: Array<{ id: string | number | null; bytes: number }> = [];
  const reader = new LineReader({
    maxLineBytes,
    onLine: (line) => lines.push(line.toString('utf8')),
    onOversized: (id, bytes) => oversized.push({ id, bytes }),
  });
  for (const chunk of chunks) reader.push(chunk);
  return { lines, oversized };
}

/** Splits `text` into chunks of `size` bytes, as a pipe would deliver it. */
const chunked = (text: string, size: number) => {
  const buf = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
};

describe('LineReader', () => {
  it('splits lines across and within chunks, skipping empty ones', () => {
    const { lines, oversized } = read(
      chunked('{"a":1}\n\n{"b":2}\n{"c":', 3).concat(Buffer.from('3}\n')),
      100,
    );
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(oversized).toEqual([]);
  });

  it('skips an oversized line, reports its id and size, and goes on with the next line', () => {
    const big = 'x'.repeat(50_000);
    const idLast = JSON.stringify({
      method: 'tools/call',
      params: { arguments: { text: big } },
      jsonrpc: '2.0',
      id: 42,
    });
    const idFirst = JSON.stringify({
      jsonrpc: '2.0',
      id: 'req-7',
      method: 'tools/call',
      params: { text: big },
    });
    const { lines, oversized } = read(
      chunked(`${idLast}\n${idFirst}\n{"jsonrpc":"2.0","id":3,"method":"ping"}\n`, 4096),
      10_000,
    );
    expect(oversized).toEqual([
      { id: 42, bytes: Buffer.byteLength(idLast) },
      { id: 'req-7', bytes: Buffer.byteLength(idFirst) },
    ]);
    expect(lines).toEqual(['{"jsonrpc":"2.0","id":3,"method":"ping"}']);
  });

  it('does not take an "id" inside the params for the request id', () => {
    expect(requestIdFromEdges('{"method":"x","params":{"id":99,', '"z"},"jsonrpc":"2.0","id":5}')).toBe(5);
    expect(requestIdFromEdges('{"method":"x","params":{"id":99,', '"q":"\\"id\\":7}"}}')).toBeNull();
    expect(requestIdFromEdges('not json at all', 'nor this')).toBeNull();
  });

  it('answers with a JSON-RPC error that names the limit and what to do', () => {
    const reply = JSON.parse(oversizedError(42, 10 * 1024 * 1024, 4 * 1024 * 1024)) as {
      id: unknown;
      error: { code: number; message: string };
    };
    expect(reply.id).toBe(42);
    expect(reply.error.code).toBe(-32600);
    expect(reply.error.message).toMatch(
      /^E_INVALID_INPUT: the message is 10\.0 MiB, over .* 4\.0 MiB limit; send smaller/,
    );
  });
});
