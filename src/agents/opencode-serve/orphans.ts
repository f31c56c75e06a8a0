/**
 * The `opencode serve` a crashed boocoder left behind. The server runs in its own process group, so
 * a boocoder killed with -9 (or OOM-killed) leaves it running: holding memory and a port, and able
 * to go on editing a worktree a later task resets. Each started server is recorded in a file under
 * `$BOOCODER_HOME/run/opencode-serve/`, with the boocoder process that owns it, both identified by
 * pid AND start time (see orphaned-agents.ts); the record is removed when the server is
 * stopped. At the next start, a record whose owner is gone has its server's group killed, but only
 * while the recorded leader is still the very process (a pid recycled for another process is never
 * signalled). A record of a live owner (another boocoder sharing the home) is left alone.
 *
 * Linux only (/proc): elsewhere nothing is recorded and nothing is reaped.
 */
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import {
  type AgentProcessRecord,
  currentBootId,
  describeAgentProcess,
  killOrphanedAgentGroup,
  readProcStat,
} from '../orphaned-agents.js';

interface ServeRecord {
  /** The boocoder process that started the server. */
  owner: AgentProcessRecord;
  server: AgentProcessRecord;
}

/** Where the records live: one file per running server. */
export const serveRecordsDir = (home: string): string => join(home, 'run', 'opencode-serve');

/**
 * Records a just-started server owned by this process. Resolves to the function that removes the
 * record (call it once the server is stopped), or undefined where /proc is missing.
 */
export async function recordServeProcess(
  home: string,
  serverPid: number,
): Promise<(() => Promise<void>) | undefined> {
  const owner = describeAgentProcess(process.pid);
  const server = describeAgentProcess(serverPid);
  if (!owner || !server) return undefined;
  const dir = serveRecordsDir(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${process.pid}-${serverPid}.json`);
  // Written whole then renamed: a crash mid-write leaves no half record to misread.
  await writeFile(`${file}.tmp`, JSON.stringify({ owner, server } satisfies ServeRecord), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
  return () => rm(file, { force: true });
}

const isProcessRecord = (v: unknown): v is AgentProcessRecord => {
  const r = v as Partial<AgentProcessRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    Number.isInteger(r.pid) &&
    Number.isInteger(r.startTicks) &&
    typeof r.host === 'string' &&
    typeof r.bootId === 'string'
  );
};

/**
 * A record file's content, or undefined for anything not a regular file of this user holding a
 * well-formed record. Blocks another local user (or a symlink planted in the folder) from making
 * boocoder kill a process of its choosing: only records this user wrote are acted on.
 */
async function readRecord(file: string): Promise<ServeRecord | undefined> {
  const info = await lstat(file).catch(() => undefined);
  if (!info?.isFile() || (process.getuid && info.uid !== process.getuid())) return undefined;
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<ServeRecord>;
    return isProcessRecord(parsed.owner) && isProcessRecord(parsed.server)
      ? { owner: parsed.owner, server: parsed.server }
      : undefined;
  } catch {
    return undefined;
  }
}

/** True while the recorded owner is the very process still running (same pid and start time). */
function ownerAlive(owner: AgentProcessRecord): boolean {
  if (owner.host !== hostname()) return true; // unknowable from here: never reap another host's
  if (owner.bootId !== currentBootId()) return false;
  const stat = readProcStat(owner.pid);
  return stat !== undefined && stat.state !== 'Z' && stat.startTicks === owner.startTicks;
}

export type ServeReapOutcome = 'owner-alive' | 'invalid' | Awaited<ReturnType<typeof killOrphanedAgentGroup>>;

/** Examines one record file: kills its server when the owner is gone, and drops the settled record. */
async function reapRecord(file: string): Promise<ServeReapOutcome> {
  const record = await readRecord(file);
  if (!record) return 'invalid';
  if (ownerAlive(record.owner)) return 'owner-alive';
  const outcome = await killOrphanedAgentGroup(record.server);
  // A group that outlived SIGKILL is looked at again at the next start.
  if (outcome !== 'lingering') await rm(file, { force: true });
  return outcome;
}

/** Reaps the servers recorded under `home` whose boocoder is gone; returns what became of each. */
export async function reapOrphanedServes(home: string, logger: Logger): Promise<ServeReapOutcome[]> {
  const dir = serveRecordsDir(home);
  const names = await readdir(dir).catch(() => [] as string[]);
  const outcomes: ServeReapOutcome[] = [];
  for (const name of names.filter((n) => /^\d+-\d+\.json$/.test(n))) {
    const outcome = await reapRecord(join(dir, name));
    outcomes.push(outcome);
    if (outcome === 'killed' || outcome === 'lingering')
      logger.warn('killed the opencode server of a crashed boocoder', { record: name, outcome });
    else if (outcome !== 'owner-alive')
      logger.info('opencode server record settled', { record: name, outcome });
  }
  return outcomes;
}
