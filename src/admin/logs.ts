/** `boocoder logs [-f]`: the server's log, `$BOOCODER_HOME/daemon.log` (JSON lines). */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DAEMON_LOG_FILE } from '../bridge/daemon-discovery.js';
import type { Config } from '../config.js';
import { BoocoderError } from '../errors.js';

/** How much of the end of the log is printed: a few hundred lines, not a long-lived server's all. */
const TAIL_BYTES = 64 * 1024;
const FOLLOW_POLL_MS = 250;

async function copyRange(path: string, from: number, to: number, out: NodeJS.WritableStream): Promise<void> {
  if (to <= from) return;
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(path, { start: from, end: to - 1 });
    stream.on('error', reject);
    stream.on('end', resolve);
    stream.on('data', (chunk) => out.write(chunk));
  });
}

/** Where the last TAIL_BYTES start, moved to the next line so no half line is printed. */
async function tailStart(path: string, size: number): Promise<number> {
  if (size <= TAIL_BYTES) return 0;
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(TAIL_BYTES);
    await handle.read(buf, 0, TAIL_BYTES, size - TAIL_BYTES);
    const nl = buf.indexOf(0x0a);
    return size - TAIL_BYTES + (nl === -1 ? 0 : nl + 1);
  } finally {
    await handle.close();
  }
}

export async function runLogs(
  config: Config,
  o: { follow: boolean; out: NodeJS.WritableStream; signal?: AbortSignal },
): Promise<void> {
  const path = join(config.home, DAEMON_LOG_FILE);
  const sizeOf = async () => (await stat(path).catch(() => undefined))?.size;
  let size = await sizeOf();
  if (size === undefined && !o.follow)
    throw new BoocoderError(
      'E_NOT_FOUND',
      `no log yet for ${config.home}; it appears once \`boocoder serve\` or a client's \`boocoder stdio\` has started the server`,
    );
  let printed = size === undefined ? 0 : await tailStart(path, size);
  await copyRange(path, printed, size ?? 0, o.out);
  printed = size ?? 0;
  while (o.follow && !o.signal?.aborted) {
    await sleep(FOLLOW_POLL_MS);
    size = await sizeOf();
    if (size === undefined) continue;
    if (size < printed) printed = 0; // the log was truncated or replaced: start over
    await copyRange(path, printed, size, o.out);
    printed = size;
  }
}
