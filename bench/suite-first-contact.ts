/**
 * Two rows of issue 13. `initialize` on a fresh home: the SDK's Client spawns
 * `node bin/boocoder.js stdio` (from another folder, a new BOOCODER_HOME each sample) and the clock
 * runs from spawn to the initialize answer; server-everything's stdio start is timed the same way
 * in the same run. boocoder's stdio answers initialize itself while its daemon and embedded
 * PostgreSQL start, so each sample then stops that daemon (`boocoder stop`), makes sure the
 * PostgreSQL of the home is gone, and removes the home: the bench leaves nothing running.
 *
 * Memory per warm agent (informational, no peer): the real opencode over ACP on the scripted model
 * server, one task per chat; after it the agent stays warm, and the PSS (RSS where PSS cannot be
 * read) of its whole process group is read from /proc.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createBenchDatabase } from './bench-db.js';
import { type BenchContext, type Suite, size } from './context.js';
import { makeRepo } from './git-repo.js';
import { REPO_ROOT } from './machine.js';
import { connectHttp, EVERYTHING_BIN, EVERYTHING_NAME, runTaskToEnd } from './mcp-clients.js';
import type { Metric } from './report.js';
import {
  BOOCODER_BIN,
  baseEnv,
  benchHomeEnv,
  makeBenchHome,
  removeHome,
  startServe,
} from './serve-process.js';
import { distribution, median, now, progress, waitFor } from './stats.js';
import { startScriptedModel, writeAgentsConfig } from './task-start-opencode.js';

const run = promisify(execFile);

/** ms from spawn to the initialize answer, for `node <script> stdio` started in `cwd`. */
async function timeInitialize(script: string, cwd: string, env: Record<string, string>): Promise<number> {
  const client = new Client({ name: 'boocoder-bench', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [script, 'stdio'],
    cwd,
    env: { ...baseEnv(), ...env },
    stderr: 'ignore',
  });
  const t0 = now();
  await client.connect(transport);
  const ms = now() - t0;
  await client.close();
  return ms;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the daemon a stdio sample started on `home` and checks its PostgreSQL is gone too. */
async function stopDaemon(home: string): Promise<void> {
  const env = { ...benchHomeEnv(home), BOOCODER_SHUTDOWN_GRACE_MS: '0' };
  // The daemon writes daemon.json once it serves; stopping it before then would race its start.
  const daemonPid = await waitFor(
    'the stdio daemon to write daemon.json',
    async () => {
      try {
        return (JSON.parse(await readFile(join(home, 'daemon.json'), 'utf8')) as { pid: number }).pid;
      } catch {
        return undefined;
      }
    },
    90_000,
    50,
  );
  // Read before `stop`: a clean PostgreSQL shutdown removes its postmaster.pid.
  const postmaster = await readFile(join(home, 'pg', 'data', 'postmaster.pid'), 'utf8')
    .then((t) => Number(t.split('\n')[0]))
    .catch(() => 0);
  await run(process.execPath, [BOOCODER_BIN, 'stop'], { cwd: home, env, timeout: 60_000 }).catch(() => {});
  await waitFor(
    'the daemon and its PostgreSQL to exit',
    async () => (alive(daemonPid) || (postmaster > 0 && alive(postmaster)) ? undefined : true),
    30_000,
    50,
  ).catch(() => {
    // `stop` did not finish the job: the process groups go, so nothing outlives the bench.
    // pid 0 would be our own process group: only real pids are signalled.
    for (const pid of [daemonPid, postmaster].filter((p) => p > 0)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
  });
}

async function initializeSamples(runs: number): Promise<{ boocoder: number[]; everything: number[] }> {
  const cwd = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-bench-cwd-')));
  const boocoder: number[] = [];
  const everything: number[] = [];
  try {
    // Untimed first pair: fills the page cache for node, the bundle and server-everything.
    for (let i = 0; i <= runs; i++) {
      const home = await makeBenchHome();
      try {
        const b = await timeInitialize(BOOCODER_BIN, cwd, benchHomeEnv(home));
        await stopDaemon(home);
        const e = await timeInitialize(EVERYTHING_BIN, cwd, {});
        if (i === 0) continue;
        boocoder.push(b);
        everything.push(e);
        progress(`first-contact: initialize ${b.toFixed(0)} ms, server-everything ${e.toFixed(0)} ms`);
      } finally {
        await removeHome(home);
      }
    }
  } finally {
    await removeHome(cwd);
  }
  return { boocoder, everything };
}

/** Which code bin/boocoder.js runs: the bundle when it is newer than every source file. */
async function measuredBuild(): Promise<string> {
  const newest = async (dir: string): Promise<number> => {
    let n = 0;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      n = Math.max(n, e.isDirectory() ? await newest(p) : (await stat(p)).mtimeMs);
    }
    return n;
  };
  try {
    const bundle = (await stat(join(REPO_ROOT, 'dist', 'boocoder.mjs'))).mtimeMs;
    return bundle >= (await newest(join(REPO_ROOT, 'src'))) ? 'dist bundle' : 'tsx (bundle stale)';
  } catch {
    return 'tsx (no bundle)';
  }
}

/** MB of one process: PSS from smaps_rollup, else RSS from status. */
async function memoryOf(pid: number): Promise<{ mb: number; kind: 'PSS' | 'RSS' }> {
  try {
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = /^Pss:\s+(\d+) kB$/m.exec(rollup)?.[1];
    if (kb) return { mb: Number(kb) / 1024, kind: 'PSS' };
  } catch {}
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return { mb: Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) / 1024, kind: 'RSS' };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  cmdline: string;
}

async function processes(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (!st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    out.push({
      pid: Number(entry),
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      cmdline: cmdline.replace(/\0/g, ' '),
    });
  }
  return out;
}

/** Memory of each warm agent started by serve `servePid`: one entry per agent process group. */
async function warmAgentMemory(
  servePid: number,
): Promise<{ mb: number[]; kind: string; processes: number[] }> {
  const procs = await processes();
  // Agents run detached, each the leader of its own group, spawned by serve.
  const leaders = procs.filter((p) => p.ppid === servePid && p.pgid === p.pid && p.cmdline.includes('acp'));
  const mb: number[] = [];
  const counts: number[] = [];
  const kinds = new Set<string>();
  for (const leader of leaders) {
    let total = 0;
    const group = procs.filter((p) => p.pgid === leader.pgid);
    for (const p of group) {
      const m = await memoryOf(p.pid);
      kinds.add(m.kind);
      total += m.mb;
    }
    mb.push(total);
    counts.push(group.length);
  }
  return { mb, kind: [...kinds].join('+') || 'PSS', processes: counts };
}

async function warmAgentSamples(ctx: BenchContext, agents: number) {
  const bench = await createBenchDatabase(ctx.adminUrl, 'firstcontact');
  const repo = await makeRepo('firstcontact', [['README.md', '# bench\n']]);
  const home = await makeBenchHome();
  const model = await startScriptedModel();
  await writeAgentsConfig(home, model);
  try {
    const serve = await startServe(home, { DATABASE_URL: bench.url, BOOCODER_SHUTDOWN_GRACE_MS: '0' });
    try {
      const client = await connectHttp(serve.url);
      try {
        // One task per chat: each chat keeps its own opencode warm afterwards.
        for (let i = 0; i < agents; i++) {
          const end = await runTaskToEnd(client, {
            project: repo,
            agent: 'opencode',
            input: `create warm-${i}.txt with content warm ${i}`,
          });
          if (end.state !== 'completed') throw new Error(`opencode task ${end.taskId} ended ${end.state}`);
        }
        await new Promise((r) => setTimeout(r, 2000));
        return await warmAgentMemory(serve.pid);
      } finally {
        await client.close();
      }
    } finally {
      await serve.stop();
    }
  } finally {
    await model.close();
    await removeHome(home);
    await removeHome(repo);
    await bench.drop();
  }
}

export const firstContactSuite: Suite = {
  name: 'first-contact',
  description: 'issue 13: stdio initialize on a fresh home vs server-everything; memory per warm opencode',
  async run(ctx: BenchContext): Promise<Metric[]> {
    const build = await measuredBuild();
    const init = await initializeSamples(size(ctx, 5, 2));
    const b = distribution(init.boocoder);
    const e = distribution(init.everything);
    const warm = await warmAgentSamples(ctx, size(ctx, 3, 1));
    progress(`first-contact: warm agents ${warm.mb.map((m) => m.toFixed(0)).join(', ')} MB (${warm.kind})`);
    return [
      {
        id: 'first-contact.initialize.fresh-home.p50',
        label: `stdio initialize, fresh home (${build}) p50`,
        unit: 'ms',
        boocoder: b.p50,
        peer: e.p50,
        peerName: `${EVERYTHING_NAME} stdio`,
        target: { kind: 'ratio-max', value: 3 },
        detail: { build, boocoder: { ...b }, everything: { ...e } },
      },
      {
        id: 'first-contact.warm-agent.memory',
        label: `${warm.kind} per warm agent (real opencode, process group; informational)`,
        unit: 'MB',
        boocoder: warm.mb.length > 0 ? median(warm.mb) : null,
        peer: null,
        ...(warm.mb.length === 0 ? { pending: 'no warm agent found' } : {}),
        detail: { perAgent: warm.mb, processesPerGroup: warm.processes },
      },
    ];
  },
};
