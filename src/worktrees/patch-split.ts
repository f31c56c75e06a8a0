/**
 * Splits one `git diff-index -z --raw -p` stream over many files without holding it whole: the raw
 * records (one per file, with modes and object ids) first, then the patch text cut into per-file
 * patches. Each patch keeps at most `maxStoredBytes` bytes, and all of them together at most
 * `maxTotalStoredBytes`; every patch's full size is counted. A patch line that begins with
 * `diff --git ` can only be a file header: content lines start with ' ', '+', '-', '@' or '\'.
 */
import { BoocoderError } from '../errors.js';

const HEADER = Buffer.from('diff --git ');
const NEWLINE_HEADER = Buffer.from('\ndiff --git ');

export interface PatchSegment {
  /** the stored bytes; empty unless `complete` */
  bytes: Buffer;
  totalBytes: number;
  /** false when a limit stopped this patch from being stored */
  complete: boolean;
}

export class PatchSplitter {
  readonly segments: PatchSegment[] = [];
  private chunks: Buffer[] = [];
  private stored = 0;
  private total = 0;
  private storing = true;
  private started = false;
  private atLineStart = true;
  private pending: Buffer | null = null;
  private budgetLeft: number;

  constructor(
    private readonly maxStoredBytes: number,
    maxTotalStoredBytes = Number.POSITIVE_INFINITY,
  ) {
    this.budgetLeft = maxTotalStoredBytes;
  }

  push(input: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, input]) : input;
    this.pending = null;
    const end = this.decidableEnd(buf);
    if (end < buf.length) this.pending = Buffer.from(buf.subarray(end));
    if (this.atLineStart && end >= HEADER.length && HEADER.compare(buf, 0, HEADER.length) === 0)
      this.startSegment();
    // The lines between two headers are appended as one run: a chunk costs a native search per
    // file in it, not a loop over its lines.
    let from = 0;
    for (let nl = buf.indexOf(NEWLINE_HEADER); nl !== -1 && nl + NEWLINE_HEADER.length <= end; ) {
      this.append(buf.subarray(from, nl + 1));
      this.startSegment();
      from = nl + 1;
      nl = buf.indexOf(NEWLINE_HEADER, from);
    }
    this.append(buf.subarray(from, end));
    // Kept-back bytes start a line; otherwise the next chunk does when this one ended one.
    if (this.pending || end > 0) this.atLineStart = this.pending !== null || buf[end - 1] === 10;
  }

  /**
   * Where the bytes this chunk can settle end: a last line that has begun, is shorter than a
   * header and matches one so far is kept back until the next chunk tells what it is.
   */
  private decidableEnd(buf: Buffer): number {
    const lastLineStart = buf.lastIndexOf(10) + 1;
    if (lastLineStart === 0 && !this.atLineStart) return buf.length; // no line starts in this chunk
    const tail = buf.length - lastLineStart;
    const maybeHeader =
      tail > 0 && tail < HEADER.length && HEADER.compare(buf, lastLineStart, buf.length, 0, tail) === 0;
    return maybeHeader ? lastLineStart : buf.length;
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
    this.segments.push({
      bytes: this.storing ? Buffer.concat(this.chunks, this.stored) : Buffer.alloc(0),
      totalBytes: this.total,
      complete: this.storing,
    });
    this.chunks = [];
    this.stored = 0;
    this.total = 0;
    this.storing = true;
    this.started = false;
  }

  private append(part: Buffer): void {
    if (!this.started) return; // nothing precedes the first header in a diff's patch part
    this.total += part.length;
    if (!this.storing) return;
    if (this.stored + part.length <= this.maxStoredBytes && part.length <= this.budgetLeft) {
      // A copy: the chunk git handed over is reused by the stream once this returns.
      this.chunks.push(Buffer.from(part));
      this.stored += part.length;
      this.budgetLeft -= part.length;
    } else {
      // Over a limit: the stored prefix would never be used, so its share of the budget goes back.
      this.budgetLeft += this.stored;
      this.chunks = [];
      this.stored = 0;
      this.storing = false;
    }
  }
}

/**
 * Reads `diff-index -z --raw -p` output: NUL-terminated raw fields (`:meta`, path, `:meta`, path...),
 * one empty field, then the patch text. More than `maxFiles` raw records throws E_TOO_MANY_FILES from
 * `push`, which makes streamGit kill git at once instead of diffing every file first.
 */
export class RawAndPatchSplitter {
  readonly patches: PatchSplitter;
  private readonly rawFields: Buffer[] = [];
  private partialField: Buffer | null = null;
  private inRaw = true;

  constructor(
    private readonly maxFiles: number,
    maxStoredBytes: number,
    maxTotalStoredBytes: number,
  ) {
    this.patches = new PatchSplitter(maxStoredBytes, maxTotalStoredBytes);
  }

  push(input: Buffer): void {
    if (!this.inRaw) {
      this.patches.push(input);
      return;
    }
    const buf = this.partialField ? Buffer.concat([this.partialField, input]) : input;
    this.partialField = null;
    let start = 0;
    for (let nul = buf.indexOf(0, start); nul !== -1; nul = buf.indexOf(0, start)) {
      const field = buf.subarray(start, nul);
      start = nul + 1;
      if (field.length === 0 && this.rawFields.length % 2 === 0) {
        this.inRaw = false;
        if (start < buf.length) this.patches.push(buf.subarray(start));
        return;
      }
      this.rawFields.push(Buffer.from(field));
      if (this.rawFields.length / 2 > this.maxFiles) {
        throw new BoocoderError(
          'E_TOO_MANY_FILES',
          `the agent changed more than ${this.maxFiles} files, the limit; nothing was recorded. Ask for a smaller task, or add build output to .gitignore`,
        );
      }
    }
    if (start < buf.length) this.partialField = Buffer.from(buf.subarray(start));
  }

  /** The raw records (each field NUL-terminated again, as parseRawDiff reads them) and the patches. */
  finish(): { raw: Buffer; segments: PatchSegment[] } {
    if (this.partialField || this.rawFields.length % 2 !== 0)
      throw new BoocoderError('E_GIT_FAILED', 'git diff output ended mid-record');
    const raw = Buffer.concat(this.rawFields.flatMap((f) => [f, Buffer.from([0])]));
    return { raw, segments: this.patches.finish() };
  }
}

/** The text stored instead of a diff larger than the per-file limit. */
export function oversizeDiffPlaceholder(filePath: string, totalBytes: number, limit: number): string {
  return placeholder(filePath, `this file's diff is ${totalBytes} bytes, over the ${limit}-byte limit`);
}

/** The text stored instead of a diff that fits the per-file limit but not the task's total. */
export function overBudgetDiffPlaceholder(filePath: string, totalBytes: number, budget: number): string {
  return placeholder(
    filePath,
    `this file's diff is ${totalBytes} bytes, and the task's diffs together passed the ${budget}-byte limit`,
  );
}

function placeholder(filePath: string, why: string): string {
  return (
    `diff --git a/${filePath} b/${filePath}\n` +
    `# boocoder: ${why}, so it was not stored.\n` +
    '# Applying the change still writes the exact file contents.\n'
  );
}
