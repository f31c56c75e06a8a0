/**
 * Bounded buffers for child-process output. An agent (or a fake binary on PATH) can print without
 * end; keeping everything would let it exhaust the server's memory.
 */

/** Keeps the first `maxBytes` bytes and notes that more arrived. */
export class HeadBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflowed = false;

  constructor(readonly maxBytes: number) {}

  /** Returns false once the cap is reached: the caller should stop reading. */
  push(chunk: Buffer): boolean {
    const room = this.maxBytes - this.size;
    if (chunk.length > room) {
      this.overflowed = true;
      if (room > 0) {
        this.chunks.push(chunk.subarray(0, room));
        this.size += room;
      }
      return false;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Keeps the last `maxBytes` bytes: what a crashed process printed just before dying. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(readonly maxBytes: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.maxBytes && this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const excess = this.size - this.maxBytes;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /** The last `maxLines` non-empty lines, each cut to `maxLineChars`. */
  lastLines(maxLines = 20, maxLineChars = 500): string[] {
    return Buffer.concat(this.chunks)
      .toString('utf8')
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '')
      .slice(-maxLines)
      .map((line) => (line.length > maxLineChars ? `${line.slice(0, maxLineChars)}…` : line));
  }
}
