/**
 * Splits one `git diff-tree -p` stream over many files into per-file patches without holding the
 * whole stream: each file keeps at most `maxStoredBytes` bytes, and its full size is counted. A
 * patch line that begins with `diff --git ` can only be a file header: content lines start with
 * ' ', '+', '-', '@' or '\'.
 */
const HEADER = Buffer.from('diff --git ');

export interface PatchSegment {
  /** the stored bytes; complete only when `totalBytes <= maxStoredBytes` */
  bytes: Buffer;
  totalBytes: number;
}

export class PatchSplitter {
  readonly segments: PatchSegment[] = [];
  private chunks: Buffer[] = [];
  private stored = 0;
  private total = 0;
  private started = false;
  private atLineStart = true;
  private pending: Buffer | null = null;

  constructor(private readonly maxStoredBytes: number) {}

  push(input: Buffer): void {
    let buf = input;
    if (this.pending) {
      buf = Buffer.concat([this.pending, input]);
      this.pending = null;
    }
    let i = 0;
    while (i < buf.length) {
      if (this.atLineStart) {
        const available = buf.length - i;
        if (available < HEADER.length && HEADER.subarray(0, available).equals(buf.subarray(i))) {
          this.pending = Buffer.from(buf.subarray(i)); // too short to tell: wait for more
          return;
        }
        if (buf.subarray(i, i + HEADER.length).equals(HEADER)) this.startSegment();
      }
      const newline = buf.indexOf(10, i);
      const end = newline === -1 ? buf.length : newline + 1;
      this.append(buf.subarray(i, end));
      this.atLineStart = newline !== -1;
      i = end;
    }
  }

  /** Flushes the last file; returns every segment in stream order. */
  finish(): PatchSegment[] {
    if (this.pending) {
      this.append(this.pending);
      this.pending = null;
    }
    this.closeSegment();
    return this.segments;
  }

  private startSegment(): void {
    this.closeSegment();
    this.started = true;
  }

  private closeSegment(): void {
    if (!this.started) return;
    this.segments.push({ bytes: Buffer.concat(this.chunks), totalBytes: this.total });
    this.chunks = [];
    this.stored = 0;
    this.total = 0;
    this.started = false;
  }

  private append(part: Buffer): void {
    if (!this.started) return; // nothing precedes the first header in diff-tree output
    this.total += part.length;
    if (this.stored + part.length <= this.maxStoredBytes) {
      this.chunks.push(Buffer.from(part));
      this.stored += part.length;
    } else {
      this.chunks = []; // over the limit: the stored prefix would never be used
      this.stored = this.maxStoredBytes + 1;
    }
  }
}

/** The text stored instead of a diff larger than the limit. */
export function oversizeDiffPlaceholder(filePath: string, totalBytes: number, limit: number): string {
  return (
    `diff --git a/${filePath} b/${filePath}\n` +
    `# boocoder: this file's diff is ${totalBytes} bytes, over the ${limit}-byte limit, so it was not stored.\n` +
    '# Applying the change still writes the exact file contents.\n'
  );
}
