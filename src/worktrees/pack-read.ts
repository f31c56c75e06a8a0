/**
 * Reads blobs stored whole in the repository's pack files, in-process, without starting git. A
 * large capture writes its blobs into one pack with no deltas (capture-pack.ts), and applying its
 * changes would otherwise start a `git cat-file` per `apply_change` call: 5-10 ms on a 2-core
 * machine, most of a one-change apply. Only the plain case is read here: pack index version 2, an
 * object stored whole (not as a delta), at most PACKED_READ_MAX bytes. Anything else (a delta, a
 * large object, an index or pack it cannot read) is left for git, the authority on its own
 * format. Every blob is hashed against its id by the caller, so a misread, or a pack planted in
 * `.git/objects/pack`, can never put other bytes into the user's files.
 */
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

/** Larger objects are left for git: this bounds the synchronous read and inflate per blob. */
export const PACKED_READ_MAX = 256 * 1024;
/** Larger index files are left for git (about 290,000 objects with sha1 ids). */
const INDEX_READ_MAX = 8 * 1024 * 1024;
const INDEX_MAGIC = 0xff744f63;
const FANOUT_START = 8;
const FANOUT_BYTES = 256 * 4;
const OBJ_BLOB = 3;

/**
 * Opens a regular file without following a link or waiting on a FIFO (a planted
 * `pack-x.idx -> /dev/zero` or FIFO must not hang or exhaust the server); null when it is not one
 * or is larger than `max`.
 */
function openRegular(path: string, max: number): { fd: number; size: number } | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.size > max) {
    closeSync(fd);
    return null;
  }
  return { fd, size: st.size };
}

/** Reads up to `length` bytes at `position`; fewer at the end of the file. */
function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** The pack offsets of the `wanted` ids this version-2 index lists (ids of `idLength` bytes). */
function offsetsIn(index: Buffer, wanted: Iterable<string>, idLength: number): Map<string, number> {
  const found = new Map<string, number>();
  if (index.length < FANOUT_START + FANOUT_BYTES || index.readUInt32BE(0) !== INDEX_MAGIC) return found;
  if (index.readUInt32BE(4) !== 2) return found;
  const count = index.readUInt32BE(FANOUT_START + 255 * 4);
  const ids = FANOUT_START + FANOUT_BYTES;
  const offsets = ids + count * idLength + count * 4; // after the ids and their CRCs
  if (index.length < offsets + count * 4 + 2 * idLength) return found;
  for (const oid of wanted) {
    const id = Buffer.from(oid, 'hex');
    const first = id[0] as number;
    let low = first === 0 ? 0 : index.readUInt32BE(FANOUT_START + (first - 1) * 4);
    let high = index.readUInt32BE(FANOUT_START + first * 4);
    while (low < high) {
      const mid = (low + high) >>> 1;
      const at = ids + mid * idLength;
      const order = Buffer.compare(index.subarray(at, at + idLength), id);
      if (order === 0) {
        const offset = index.readUInt32BE(offsets + mid * 4);
        // The high bit points into the 64-bit offset table of packs over 2 GiB: left for git.
        if (offset < 0x80000000) found.set(oid, offset);
        break;
      }
      if (order < 0) low = mid + 1;
      else high = mid;
    }
  }
  return found;
}

/** The whole-stored blob at `offset`, or null for anything else (delta, other type, too large). */
function blobAt(fd: number, offset: number, packSize: number): Buffer | null {
  const header = readAt(fd, offset, 16);
  let byte = header[0] ?? 0;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  let shift = 4;
  let used = 1;
  while (byte & 0x80) {
    if (used >= header.length) return null;
    byte = header[used++] as number;
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (type !== OBJ_BLOB || size > PACKED_READ_MAX) return null;
  // zlib never grows data by more than 5 bytes per 16 KiB stored block plus its 6-byte frame.
  const window = Math.min(size + 5 * Math.ceil((size + 1) / 16_383) + 16, packSize - offset - used);
  try {
    const body = inflateSync(readAt(fd, offset + used, window), { maxOutputLength: Math.max(size, 1) });
    return body.length === size ? body : null;
  } catch {
    return null;
  }
}

/** The whole-stored blobs of `oids` found in one pack, by its index. */
function readFromPack(packDir: string, name: string, wanted: Set<string>, idLength: number) {
  const out = new Map<string, Buffer>();
  const index = openRegular(join(packDir, name), INDEX_READ_MAX);
  if (!index) return out;
  let offsets: Map<string, number>;
  try {
    offsets = offsetsIn(readAt(index.fd, 0, index.size), wanted, idLength);
  } finally {
    closeSync(index.fd);
  }
  if (offsets.size === 0) return out;
  const pack = openRegular(join(packDir, `${name.slice(0, -'.idx'.length)}.pack`), Number.MAX_SAFE_INTEGER);
  if (!pack) return out;
  try {
    for (const [oid, offset] of offsets) {
      const blob = blobAt(pack.fd, offset, pack.size);
      if (blob) out.set(oid, blob);
    }
  } finally {
    closeSync(pack.fd);
  }
  return out;
}

/**
 * Whichever of `oids` (all of one length, checked by the caller) are stored whole in the packs of
 * `repoRoot`'s own `.git` folder. Unverified: the caller hashes each against its id.
 */
export function readWholeStoredBlobs(repoRoot: string, oids: readonly string[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const packDir = join(repoRoot, '.git', 'objects', 'pack');
  let names: string[];
  try {
    names = readdirSync(packDir).filter((n) => /^pack-[0-9a-f]{40,64}\.idx$/.test(n));
  } catch {
    return out; // `.git` is a file (a worktree or submodule checkout) or has no packs: git reads
  }
  const wanted = new Set(oids);
  const idLength = (oids[0]?.length ?? 40) / 2;
  for (const name of names) {
    if (wanted.size === 0) break;
    for (const [oid, blob] of readFromPack(packDir, name, wanted, idLength)) {
      out.set(oid, blob);
      wanted.delete(oid);
    }
  }
  return out;
}
