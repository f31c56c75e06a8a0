/**
 * Reading the blobs a batch of changes needs from the repository's object store, each checked
 * against its id. Loose objects (a small capture writes every blob it records as one) and blobs
 * stored whole in a pack (a large capture's, pack-read.ts) are read in-process; whatever else is
 * packed is read by ONE `git cat-file --batch` for the whole batch, not one git process per blob.
 */

import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFile, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflate, inflateSync } from 'node:zlib';
import { BoocoderError } from '../errors.js';
import { assertOid, streamGit } from './git.js';
import { readWholeStoredBlobs } from './pack-read.js';

const inflateAsync = promisify(inflate);

/** The largest file apply writes; capture refuses larger ones, so every captured change can be applied. */
export const MAX_FILE_BYTES = 1024 * 1024 * 1024;
/** All blobs of one batch together: they are held in memory until every file is written. */
export const MAX_BATCH_BYTES = 2 * MAX_FILE_BYTES;
/**
 * Files up to this size are read with synchronous calls. For a small file already in the page
 * cache the system call costs microseconds, while each asynchronous call is a round trip through
 * libuv's four-thread pool: checking a batch of 100 files asynchronously spent 15-30 ms in those
 * round trips on a busy 2-core machine, synchronously about 1.5 ms. Larger files are read
 * asynchronously, so a batch never holds the event loop for long.
 */
export const SYNC_READ_MAX = 256 * 1024;
const SYNC_INFLATE_MAX = 16 * 1024;
/** Loose objects read at once: enough to hide file system latency, few enough to bound open files. */
const LOOSE_CONCURRENCY = 16;

/** The git blob id of some bytes, computed in-process: nothing (no clean filter) can run. */
export function blobOidOf(bytes: Buffer, format: 'sha1' | 'sha256' = 'sha1'): string {
  return createHash(format).update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function formatOf(oid: string): 'sha1' | 'sha256' {
  return oid.length === 64 ? 'sha256' : 'sha1';
}

/**
 * The blob's bytes from the loose object file `.git/objects/xx/yyyy`, read and inflated in-process.
 * Null when the object is not there as a loose file (packed, or `.git` is not a plain folder).
 */
async function readLooseBlob(repoRoot: string, oid: string): Promise<Buffer | null> {
  const path = join(repoRoot, '.git', 'objects', oid.slice(0, 2), oid.slice(2));
  let compressed: Buffer;
  try {
    // A FIFO or a link to /dev/zero planted there must not hang or exhaust the server: no link is
    // followed, opening does not wait for a FIFO's writer, and only a regular file of bounded size
    // is read. The content itself is checked against the oid by the caller.
    compressed = await readBoundedFile(path);
  } catch {
    return null;
  }
  let object: Buffer;
  try {
    // Small objects synchronously, as for SYNC_READ_MAX. The bound is on the compressed size and
    // lower: deflate expands up to ~1000×, and a planted object must not hold the event loop long.
    object =
      compressed.length <= SYNC_INFLATE_MAX
        ? inflateSync(compressed, { maxOutputLength: MAX_FILE_BYTES + 64 })
        : await inflateAsync(compressed, { maxOutputLength: MAX_FILE_BYTES + 64 });
  } catch {
    return null; // not a loose object git wrote: let git read the store
  }
  const nul = object.indexOf(0);
  const header = object.subarray(0, nul === -1 ? 0 : nul).toString('latin1');
  const body = object.subarray(nul + 1);
  return header === `blob ${body.length}` ? body : null;
}

/** A regular file of at most MAX_FILE_BYTES, else throws; small ones read synchronously (SYNC_READ_MAX). */
async function readBoundedFile(path: string): Promise<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) throw new Error('not a loose object file');
    if (st.size <= SYNC_READ_MAX) return readFileSync(fd);
    return await new Promise<Buffer>((resolve, reject) =>
      readFile(fd, (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
  } finally {
    closeSync(fd);
  }
}

/** The loose blob if it is there and hashes to `oid` (the hash proves the file holds that blob). */
async function readVerifiedLoose(repoRoot: string, oid: string): Promise<Buffer | null> {
  const loose = await readLooseBlob(repoRoot, oid);
  return loose && blobOidOf(loose, formatOf(oid)) === oid ? loose : null;
}

/**
 * Parses `git cat-file --batch` output as it streams in: `<oid> <type> <size>\n<bytes>\n` per
 * object, `<oid> missing\n` for an absent one. Each blob is checked against its id (belt and braces
 * against object replacement; refs/replace is also disabled in git.ts) and its size bounded first.
 */
class CatFileParser {
  /** Bytes of a header line not yet ended by its newline. */
  private head = Buffer.alloc(0);
  /** The blob being received: its chunks are collected, not concatenated one by one. */
  private body: { oid: string; size: number; chunks: Buffer[]; got: number } | null = null;
  private total = 0;
  readonly blobs = new Map<string, Buffer>();

  push(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.body) {
        // The body, then the newline git prints after it.
        const want = this.body.size + 1 - this.body.got;
        const take = rest.subarray(0, want);
        this.body.chunks.push(take);
        this.body.got += take.length;
        rest = rest.subarray(take.length);
        if (this.body.got === this.body.size + 1) this.finishBlob();
        continue;
      }
      const nl = rest.indexOf(10);
      const line = Buffer.concat([this.head, nl === -1 ? rest : rest.subarray(0, nl)]);
      if (line.length > 256) throw gitBroke('an over-long header line');
      if (nl === -1) {
        this.head = line;
        return;
      }
      this.head = Buffer.alloc(0);
      this.readHeader(line.toString('latin1'));
      rest = rest.subarray(nl + 1);
    }
  }

  private readHeader(line: string): void {
    const [oid = '', type = '', size = ''] = line.split(' ');
    if (type === 'missing') {
      throw new BoocoderError(
        'E_GIT_FAILED',
        `blob ${oid} is not in the repository's object store; the change cannot be applied`,
      );
    }
    if (type !== 'blob' || !/^\d{1,12}$/.test(size)) throw gitBroke(`a ${type || 'malformed'} object`);
    const bytes = Number(size);
    this.total += bytes;
    if (bytes > MAX_FILE_BYTES || this.total > MAX_BATCH_BYTES) {
      throw new BoocoderError(
        'E_INVALID_INPUT',
        'the files of this batch are too large to apply together; apply the changes in smaller batches',
      );
    }
    this.body = { oid, size: bytes, chunks: [], got: 0 };
  }

  private finishBlob(): void {
    const { oid, size, chunks } = this.body as NonNullable<typeof this.body>;
    this.body = null;
    // A copy: slices would otherwise keep the whole chunks they came from alive.
    const bytes = Buffer.concat(chunks, size + 1).subarray(0, size);
    if (blobOidOf(bytes, formatOf(oid)) !== oid) {
      throw new BoocoderError('E_GIT_FAILED', `the object store returned other bytes for blob ${oid}`);
    }
    this.blobs.set(oid, bytes);
  }
}

function gitBroke(what: string): BoocoderError {
  return new BoocoderError('E_GIT_FAILED', `git cat-file answered with ${what}`);
}

/** Reads packed blobs through one `git cat-file --batch` process fed the whole list of ids. */
async function readPackedBlobs(repoRoot: string, oids: string[]): Promise<Map<string, Buffer>> {
  const parser = new CatFileParser();
  await streamGit(['cat-file', '--batch'], { cwd: repoRoot, input: `${oids.join('\n')}\n` }, (chunk) =>
    parser.push(chunk),
  );
  for (const oid of oids) if (!parser.blobs.has(oid)) throw gitBroke(`no answer for blob ${oid}`);
  return parser.blobs;
}

/** Runs `fn` on every item with at most `limit` running at once; rejects with the first failure. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  // Every worker is waited for, so nothing is still running when the caller sees the failure.
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.err;
}

/** Every blob in `oids` (ids are checked first: they reach git's stdin), each verified against its id. */
export async function readBlobs(repoRoot: string, oids: Iterable<string>): Promise<Map<string, Buffer>> {
  const wanted = [...new Set(oids)].map((oid) => assertOid(oid, 'the blob id'));
  const out = new Map<string, Buffer>();
  await forEachLimited(wanted, LOOSE_CONCURRENCY, async (oid) => {
    const loose = await readVerifiedLoose(repoRoot, oid);
    if (loose) out.set(oid, loose);
  });
  const packed = wanted.filter((oid) => !out.has(oid));
  if (packed.length === 0) return out;
  for (const [oid, bytes] of readWholeStoredBlobs(repoRoot, packed)) {
    if (blobOidOf(bytes, formatOf(oid)) === oid) out.set(oid, bytes);
  }
  const rest = packed.filter((oid) => !out.has(oid));
  if (rest.length > 0) for (const [oid, bytes] of await readPackedBlobs(repoRoot, rest)) out.set(oid, bytes);
  return out;
}

/** Reads one blob's raw bytes from the repository's object store and checks they hash to `oid`. */
export async function readBlob(repoRoot: string, oid: string): Promise<Buffer> {
  const bytes = (await readBlobs(repoRoot, [oid])).get(oid);
  if (!bytes) throw gitBroke(`no answer for blob ${oid}`);
  return bytes;
}
